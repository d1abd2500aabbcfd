"""A deployment's own Celery settings for wadispatch: an example to copy and edit.

wadispatch carries its defaults inside the package (``wadispatch.celery_settings``) and reads
this file only when ``WADISPATCH_CELERY_CONFIG`` names it, e.g. in the folder you start the
workers from::

    WADISPATCH_CELERY_CONFIG=celeryconfig wadispatch worker
    WADISPATCH_CELERY_CONFIG=/etc/wadispatch/celeryconfig.py celery -A wadispatch worker

Every lower-case name below is a Celery setting laid over wadispatch's defaults; a
``WADISPATCH_CELERY_<NAME>`` environment variable still wins over both. A web app's own
``celeryconfig.py`` is never read by wadispatch unless that variable names it.
"""

# More jobs reserved per worker thread (the default, 1, keeps jobs spread over workers).
# worker_prefetch_multiplier = 4

# Keep jobs longer than an hour before Redis redelivers an unacknowledged one.
# broker_transport_options = {"visibility_timeout": 7200, "socket_connect_timeout": 5, "socket_timeout": 10}

# Time limits of one job (seconds).
# task_soft_time_limit = 60
# task_time_limit = 90
