# The post's Flask frontend, unchanged: one page calling the backend through
# the post's ApiClient. The post deploys it with `gunicorn -w 4 app:app`;
# scripts/bench-vs-bare runs it that way to compare pages with grpcplay's.
from flask import Flask, render_template

import settings
from api import ApiClient

app = Flask(__name__)

app.config["api"] = ApiClient(f"{settings.BACKEND_HOST}:{settings.BACKEND_PORT}")


@app.route("/")
def home():
    api = app.config["api"]
    return render_template(
        "index.html",
        name=api.sayHello("Gonzalo"),
        items=api.getAll(length=10),
        items2=api.getStream(length=5)
    )
