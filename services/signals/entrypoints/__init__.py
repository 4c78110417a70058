"""How the signals worker is run: its Faust app and agent (faust_app.py), and its web pages (http.py)."""
