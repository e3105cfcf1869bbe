"""Logging in and out, the session cookie, CSRF, roles.

- The session cookie `nv_session` is HttpOnly, SameSite=Strict and (unless the config says
  `secure_cookies = false`) Secure: sent only over HTTPS, and to http://localhost.
- Every request that changes something (any method but GET/HEAD/OPTIONS) must carry the session's
  CSRF token, in the `X-CSRF-Token` header (what the page's scripts send) or a `csrf` form field;
  a request whose `Origin` is another site is refused as well. The login form, which comes before
  any session, uses a double-submit token: a cookie and a form field that must match.
- Failed logins are counted per account name and per address (basestation/accounts.py); past the
  limit, logins are refused with 429 and Retry-After without looking at the password.
"""

from __future__ import annotations

import functools
import hmac
import math
import secrets
from urllib.parse import urlsplit

from flask import Blueprint, Flask, current_app, g, jsonify, make_response, redirect, render_template, request

from basestation import accounts

SESSION_COOKIE = "nv_session"
LOGIN_COOKIE = "nv_login_csrf"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

blueprint = Blueprint("auth", __name__)


def install(app: Flask) -> None:
    @app.before_request
    def _session_and_csrf():
        g.session = accounts.session(g.store, request.cookies.get(SESSION_COOKIE))
        if request.method in SAFE_METHODS or request.endpoint == "auth.login":
            return None
        if not _same_origin():
            return _refuse(403, "refused: the request comes from another site (Origin)")
        sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf") or ""
        if g.session is None:
            return _refuse(401, "log in first")
        if not hmac.compare_digest(sent.encode(), g.session.csrf.encode()):
            return _refuse(403, "refused: the CSRF token is missing or wrong; reload the page")
        return None


def requires(role: str):
    """A view for sessions whose role includes `role`; 401 (or the login page) without a session."""
    def wrap(view):
        @functools.wraps(view)
        def checked(*args, **kwargs):
            if g.session is None:
                return _refuse(401, "log in first")
            if not g.session.may(role):
                return _refuse(403, f"your role ({g.session.role}) may not do this; it needs {role}")
            return view(*args, **kwargs)
        return checked
    return wrap


@blueprint.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        if g.session is not None:
            return redirect("/")
        return _login_page()
    form_token = request.form.get("csrf", "")
    cookie_token = request.cookies.get(LOGIN_COOKIE, "")
    if not cookie_token or not hmac.compare_digest(form_token.encode(), cookie_token.encode()) or not _same_origin():
        return _login_page("The login form had expired; please try again.", 403)
    name = request.form.get("name", "").strip()
    password = request.form.get("password", "")
    address = request.remote_addr or "?"
    wait = accounts.retry_after(g.store, name, address)
    if wait > 0:
        minutes = math.ceil(wait / 60)
        response = _login_page(f"Too many failed logins. Try again in {minutes} minute{'s' if minutes > 1 else ''}.", 429)
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response
    opened = accounts.log_in(g.store, name, password, address)
    if opened is None:
        return _login_page("Wrong name or password.", 401)
    token, _ = opened
    response = redirect("/")
    response.set_cookie(SESSION_COOKIE, token, max_age=accounts.SESSION_S, httponly=True, samesite="Strict",
                        secure=_secure(), path="/")
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@blueprint.post("/logout")
def logout():
    accounts.log_out(g.store, request.cookies.get(SESSION_COOKIE))
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="Strict", secure=_secure())
    return response


def _login_page(error: str | None = None, status: int = 200):
    token = secrets.token_urlsafe(32)
    response = make_response(render_template("login.html", csrf=token, error=error), status)
    response.set_cookie(LOGIN_COOKIE, token, max_age=3600, httponly=True, samesite="Strict", secure=_secure(),
                        path="/login")
    return response


def _secure() -> bool:
    return current_app.config["NV_SERVE"].secure_cookies


def _same_origin() -> bool:
    """No Origin header (an older browser, a script) passes; the CSRF token still has to match."""
    origin = request.headers.get("Origin")
    if not origin:
        return True
    host = urlsplit(origin).netloc
    return origin != "null" and host == request.host


def _refuse(status: int, message: str):
    if request.path.startswith("/api/") or request.method not in SAFE_METHODS:
        return jsonify(error=message), status
    return redirect("/login")
