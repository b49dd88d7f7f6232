# One image for the web process and the rq workers.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY requirements.txt .
COPY constraints.txt .
RUN pip install --no-cache-dir -r requirements.txt -c constraints.txt

COPY . .
# collectstatic needs settings that import; the real secret comes from the environment at run time.
RUN DEBUG=false SECRET_KEY=build-only-not-secret-collectstatic-key ALLOWED_HOSTS=build \
    python manage.py collectstatic --noinput

RUN useradd --create-home openbench && chown -R openbench /app
USER openbench
EXPOSE 8000
CMD ["gunicorn", "openbench.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
