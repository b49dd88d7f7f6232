"""Forms of the account pages: log in by email, register, name a new API key."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from accounts.models import ApiKey


class EmailAuthenticationForm(AuthenticationForm):
    """Django's login form, labelled for what the login is: the email address."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Please enter a correct email and password. The password is case-sensitive.",
    }
    username = forms.EmailField(
        label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )

    def clean_username(self) -> str:
        # Emails are stored lower-case (UserManager.create_user), so match them case-insensitively.
        return str(self.cleaned_data["username"]).strip().lower()


class RegisterForm(forms.Form):
    """Shape only; accounts.services.user_create decides (unique email, password validators)."""

    email = forms.EmailField(widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    display_name = forms.CharField(max_length=150, required=False, help_text="Shown next to your tests.")
    password1 = forms.CharField(
        label="Password", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    password2 = forms.CharField(
        label="Password again", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if data.get("password1") and data.get("password2") and data["password1"] != data["password2"]:
            self.add_error("password2", "The two passwords differ.")
        return data


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=ApiKey._meta.get_field("name").max_length,
        help_text="What the key is for, e.g. “CI pipeline”.",
    )
