"""WSGI entry point."""

import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openbench.settings")
# As manage.py does: no collections while Django and the apps are imported (~250 of them over objects
# that all live as long as the process, 0.07-0.1 s of each worker's start).
gc.disable()
try:
    from django.core.wsgi import get_wsgi_application

    application = get_wsgi_application()
finally:
    gc.enable()

# Everything loaded so far (Django, the apps, their modules) lives as long as the process. Frozen,
# it is left out of every later collection: a full collection during a large answer (tens of
# thousands of trend points) then scans only that request's objects, not the whole program again.
gc.freeze()
