"""`churn app`: the marketing web page over the published at-risk lists (optional extra `app`).

Selection, what-if, history and security decisions are pure modules here (no web framework);
`server.py` is the HTTP layer (FastAPI, Jinja2, uvicorn) and the only module that imports them,
so `import churn` never needs the extra.
"""
