"""A local fake of every provider wadispatch sends through, for the demo, tests and benchmarks.

One aiohttp server speaks the five providers' APIs on their documented paths (see
:mod:`wadispatch.simulator.app`) and answers exactly in the shapes of ``docs/providers.md``, with
configurable latency, throughput limits, closed windows, opt-outs, faults and scripted answers, and
posts status callbacks and user replies to a webhook URL.

    from wadispatch.simulator import SimulatorConfig, SimulatorServer

    with SimulatorServer(SimulatorConfig(latency="fixed", latency_ms=0)) as sim:
        os.environ.update(sim.base_urls())
        ...
        sim.stats()["answers"]["accepted"]

Answers (the refusal kinds, per provider)
=========================================
=============  ============================  ==========================  ===========================
kind           briq                          bird                        zixflow
=============  ============================  ==========================  ===========================
accepted       202 success/data              202 {id, status:accepted}   200 {success, message,
                                                                         request_id}
rate_limited   429 RATE_LIMITED              429 code 429                429
transient      503 SERVICE_UNAVAILABLE       500 code 99                 503
auth           401 UNAUTHORIZED              401 code 2                  401
window_closed  422 WINDOW_CLOSED             422 code 470                400 "...24-hour window...
                                                                         re-engagement...131047"
opted_out      422 OPTED_OUT                 422 code 131050             400 "...opted out
                                                                         (opt-out)..."
invalid        422 VALIDATION_ERROR + field  422 code 9 (missing) / 10   400 "Validation failed:
                                             + parameter                 <field> <rule>"
=============  ============================  ==========================  ===========================

=============  =======================================  ===========================================
kind           wacr                                     meta (error.code, HTTP status)
=============  =======================================  ===========================================
accepted       200 {success, data: {message_id, ...}}   200 {messaging_product, contacts, messages}
rate_limited   429 RATE_LIMIT_EXCEEDED                  130429, 429 (pair limit: 131056, 429)
transient      500 INTERNAL_ERROR                       2, 503
auth           401 UNAUTHORIZED                         190, 401
window_closed  500 MESSAGE_SEND_FAILED "(#131047)..."   131047, 400
opted_out      403 CONTACT_OPTED_OUT                    131050, 400
invalid        422 VALIDATION_ERROR                     100, 400
=============  =======================================  ===========================================

Every 429 carries ``Retry-After`` (whole seconds until the window frees a slot; scripted: its
``retry_after``, default 1; a storm's, drawn for a ``rate_limited_rate`` share of requests whatever
the limits: ``rate_limited_retry_after``, default 1). Other providers answer a pair-limit violation
with their ordinary 429. A hang holds the request ``hang_seconds`` and then closes the connection; a
drop closes it at once.

Senders: briq ``sender`` (or the conversation's, or "default"), bird ``from``, zixflow
``phone_id``, wacr "default" (the account), meta the phone-number id in the path.

Stats (``GET /_sim/stats``, ``SimulatorServer.stats()``)
=====================================================
``requests`` {provider: n}, ``requests_total``, ``requests_by_sender`` {provider: {sender: n}},
``answers`` {provider: {class: n}} and ``answers_total`` {class: n} over the classes accepted,
rate_limited, transient, auth, window_closed, opted_out, invalid, hang, drop (every provider and
class present, zeros included), ``limit_violations`` {"sender": n, "pair": n},
``limit_violations_by_sender``, ``max_rate`` {provider: {sender: most accepted sends in any one
second}}, ``max_rate_overall``, ``max_request_rate`` (the same over all requests), ``callbacks``
{scheduled, delivered, failed, dropped, pending, last_error?}, ``script_pending``,
``accepted_log_size`` and ``accepted_log`` (left out with ``?log=0``): ``[{provider, sender,
recipient, provider_message_id, time, kind, body, post_back_data}]``.

Webhook formats (status callbacks and replies)
==============================================
Each accepted message gets, ``callback_delay_ms`` apart: ``sent`` (not Zixflow), then ``failed`` or
``delivered`` → ``read`` → a reply choosing one of its buttons/rows (see
:mod:`wadispatch.simulator.callbacks`). Samples: ``tests/samples/webhooks/<provider>/``.

- **meta** (Meta's documented format): ``{"object": "whatsapp_business_account", "entry": [{"id":
  <WABA id>, "changes": [{"field": "messages", "value": {"messaging_product": "whatsapp",
  "metadata": {"display_phone_number", "phone_number_id"}, ...}}]}]}`` where ``value`` holds
  ``statuses: [{id: <wamid>, status, timestamp, recipient_id, errors?: [{code: 131026, title,
  message, error_data}]}]`` or ``contacts: [{profile: {name}, wa_id}]`` + ``messages: [{from, id,
  timestamp, type: "interactive", context: {from, id: <wamid answered>}, interactive: {type:
  "button_reply"|"list_reply", button_reply|list_reply: {id, title, description?}}}]``. Header
  ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(meta_app_secret, raw body)>``.
- **briq** (assumed from Briq's event names): ``{"event_id": <uuid>, "event":
  "whatsapp.sent"|"whatsapp.delivered"|"whatsapp.read"|"whatsapp.failed", "created_at": <ISO>,
  "data": {message_id, conversation_id, sender, to, provider_message_id, status, error: null |
  {code: "UNDELIVERABLE", message}}}``; a reply is the inbound message event ``{"event_id",
  "event": "whatsapp.inbound", "created_at", "data": {message_id, conversation_id, sender, from,
  direction: "inbound", type: "interactive", interactive: {type, button_reply|list_reply: {id,
  title}}, context: {message_id: <Briq id answered>, provider_message_id}, provider_message_id}}``.
  Header ``X-Briq-Signature: <hex HMAC-SHA256(briq_webhook_secret, raw body)>``.
- **bird**: a reply is the message resource of Bird's page (provider-docs 002): ``{id,
  conversationId, platform: "whatsapp", to: <business number>, from: "+<digits>", channelId, type:
  "interactive", content: {interactive: {type: "button_reply"|"list_reply", reply: {id, text,
  description?}}}, replyTo: {id: <Bird id answered>}, direction: "received", status: "received",
  createdDatetime, updatedDatetime}``. A status update (assumed) is the sent message resource as it
  now is: ``{id: <Bird id>, conversationId, platform, to: "+<digits>", from: <channel id>,
  channelId, type: "interactive", direction: "sent", status: "sent"|"delivered"|"read"|"failed",
  createdDatetime, updatedDatetime, error?: {code: 131026, description}}``. Header
  ``MessageBird-Signature-JWT``: HS256 JWT (key ``bird_signing_key``) with ``iss: "MessageBird"``,
  ``nbf``, ``exp``, ``jti``, ``url_hash`` and ``payload_hash`` (hex SHA-256 of URL and raw body).
- **zixflow** (assumed; unsigned): posted to the request's ``post_back_url`` (else the configured
  URL): ``{request_id, post_back_data, phone_id, recipient, timestamp, status:
  "delivered"|"read"|"failed", error: null | {code: 131026, message}}``; a reply has ``status:
  "replied"`` and ``interactive: {type: "button_reply"|"list_reply", <type>: {id, title}}``.
- **wacr** (WA.cr documents no webhooks; a plain shape, unsigned): ``{event: "message.status",
  message_id, phone: "+<digits>", status, timestamp, error: null | {code: "MESSAGE_SEND_FAILED",
  message}}`` and ``{event: "message.received", message_id, phone, type: "interactive",
  interactive: {type: "button_reply"|"list_reply", id, title, description?}, reply_to: <message_id
  answered>, timestamp}``.
"""

from wadispatch.simulator.config import SimulatorConfig, load_config
from wadispatch.simulator.engine import Outcome, Simulator
from wadispatch.simulator.fates import Fate, recipient_fate
from wadispatch.simulator.server import SimulatorServer, base_urls, serve

__all__ = [
    "Fate",
    "Outcome",
    "Simulator",
    "SimulatorConfig",
    "SimulatorServer",
    "base_urls",
    "load_config",
    "recipient_fate",
    "serve",
]
