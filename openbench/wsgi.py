"""WSGI entry point."""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openbench.settings")
application = get_wsgi_application()

# Everything loaded so far (Django, the apps, their modules) lives as long as the process. Frozen,
# it is left out of every later collection: a full collection during a large answer (tens of
# thousands of trend points) then scans only that request's objects, not the whole program again.
gc.freeze()
