# gunicorn ships no types; the part app/core/serving.py uses.
