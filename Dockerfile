# One image for the web process and the rq workers.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY requirements.txt .
COPY constraints.txt .
RUN pip install --no-cache-dir -r requirements.txt -c constraints.txt

COPY . .
# PYTHONDONTWRITEBYTECODE keeps the running containers from writing into /app, so the bytecode is compiled
# here, once: otherwise every process (each run_batch, worker, gunicorn worker) compiled ~100 of the
# project's modules from source at start-up (~0.2 s), and the site-packages pip left uncompiled.
RUN python -m compileall -q -j 0 /app "$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
# collectstatic needs settings that import; the real secret comes from the environment at run time.
RUN DEBUG=false SECRET_KEY=build-only-not-secret-collectstatic-key ALLOWED_HOSTS=build \
    python manage.py collectstatic --noinput

RUN useradd --create-home openbench && chown -R openbench /app
USER openbench
EXPOSE 8000
CMD ["gunicorn", "openbench.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
