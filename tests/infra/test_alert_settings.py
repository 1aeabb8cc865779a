"""The `alerting` settings and the receivers' secret config keys: validated, never echoed, never plain."""

from __future__ import annotations

import secrets

import pytest

from infra import catalog
from infra.settings import RECEIVER_SECRET_KEYS, AlertingSettings, SettingsError, parse_settings
from infra.tools import mocks

GCP = {"gcp:project": "hydrostream-dev", "gcp:region": "europe-west1", "gcp:zone": "europe-west1-b"}
MAIL = {"email_to": "oncall@example.com", "email_from": "am@example.com", "smarthost": "smtp.example.com:587"}


def alerting(**values) -> AlertingSettings:
    return parse_settings("dev", {**GCP, "hydrostream:alerting": values}).alerting


def problems(stack: str, **values) -> str:
    config = {**GCP, "hydrostream:alerting": values} if stack != "local" else {"hydrostream:alerting": values}
    with pytest.raises(SettingsError) as caught:
        parse_settings(stack, config)
    return str(caught.value)


def test_no_receiver_by_default_and_no_secret_needed():
    assert alerting() == AlertingSettings()
    assert alerting().secrets == ()


def test_each_receiver_needs_exactly_its_secrets():
    assert alerting(pagerduty=True).secrets == (catalog.PAGERDUTY_ROUTING_KEY,)
    assert alerting(**MAIL).secrets == ()  # a relay that takes the VM without a login
    assert alerting(**MAIL, smtp_username="am").secrets == (catalog.SMTP_PASSWORD,)
    assert alerting(webhook=True).secrets == (catalog.WEBHOOK_URL,)
    everything = alerting(**MAIL, smtp_username="am", pagerduty=True, webhook=True)
    assert everything.secrets == catalog.RECEIVER_SECRETS


@pytest.mark.parametrize(("values", "named"), [
    ({"email_to": "oncall@example.com"}, "hydrostream:alerting.email_from = None: expected set when"),
    ({"email_from": "am@example.com"}, "hydrostream:alerting.email_to = None: expected set when"),
    ({**MAIL, "email_to": "not-an-address"}, "hydrostream:alerting.email_to = 'not-an-address'"),
    ({**MAIL, "smarthost": "smtp.example.com:25"}, "GCP blocks 25"),
    ({**MAIL, "smarthost": "smtp.example.com"}, "host:port of an SMTP relay"),
    ({"webhook": "yes"}, "hydrostream:alerting.webhook = 'yes': expected true or false"),
    # The URL is a secret key now, never a plain value in the alerting section.
    ({"webhook_url": "https://hooks.example.com/x"}, "hydrostream:alerting.webhook_url = "),
    ({"pagerduty": "yes"}, "hydrostream:alerting.pagerduty = 'yes': expected true or false"),
    ({"slack": "x"}, "hydrostream:alerting.slack = 'x': expected one of the keys email_to"),
])
def test_bad_alerting_values_are_named(values, named):
    assert named in problems("dev", **values)


def test_the_local_stack_takes_no_receivers():
    assert "none on the local stack" in problems("local", webhook=True)


SECRET_PROGRAM = '''
from infra.settings import load_settings, receiver_secret_values
settings = load_settings()
values = receiver_secret_values(settings.alerting)
'''


def secret_program(tmp_path, extra: str = ""):
    """A program that loads the settings and the receivers' secrets, as the stacks do."""
    program = tmp_path / "program.py"
    program.write_text(SECRET_PROGRAM + extra)
    return program


def test_a_missing_receiver_secret_names_the_command_that_sets_it(tmp_path, monkeypatch):
    program = secret_program(tmp_path)
    config = {**GCP, "hydrostream:alerting": {"pagerduty": True}}
    # mocks.run_plan stands in a placeholder for unset secrets: call the runner without it.
    monkeypatch.setattr(mocks, "with_secret_placeholders", dict)
    with pytest.raises(SettingsError, match=r"pulumi config set --secret hydrostream:pagerduty_routing_key"):
        mocks.run_plan("dev", config, program=program)


def test_a_receiver_secret_is_read_as_a_secret_and_never_echoed(tmp_path):
    value = f"routing-{secrets.token_hex(12)}"
    key = f"hydrostream:{RECEIVER_SECRET_KEYS[catalog.PAGERDUTY_ROUTING_KEY]}"
    # As the engine hands over a `pulumi config set --secret` value (decrypted), beside an invalid key.
    program = secret_program(tmp_path)
    config = {**GCP, key: value, "hydrostream:alerting": {"pagerduty": True}, "hydrostream:kafak": {}}
    with pytest.raises(SettingsError) as caught:
        mocks.run_plan("dev", config, program=program)
    assert "hydrostream:kafak" in str(caught.value) and "1 problem" in str(caught.value)
    assert value not in str(caught.value) and key not in str(caught.value)

    config.pop("hydrostream:kafak")
    result = mocks.run_plan("dev", config, program=program)
    assert result.settings.alerting.pagerduty is True


@pytest.mark.parametrize("url", ["not a url", "ftp://hooks.example.com/x"])
def test_a_webhook_url_secret_that_is_no_http_url_is_refused_unshown(tmp_path, url):
    key = f"hydrostream:{RECEIVER_SECRET_KEYS[catalog.WEBHOOK_URL]}"
    program = secret_program(tmp_path, f"values[{catalog.WEBHOOK_URL!r}].apply(print)\n")
    config = {**GCP, key: url, "hydrostream:alerting": {"webhook": True}}
    with pytest.raises(Exception, match=r"hydrostream:webhook_url: not an http\(s\) URL") as caught:
        mocks.run_plan("dev", config, program=program)
    assert url not in str(caught.value)


def test_a_webhook_url_secret_that_is_an_http_url_passes(tmp_path):
    key = f"hydrostream:{RECEIVER_SECRET_KEYS[catalog.WEBHOOK_URL]}"
    program = secret_program(tmp_path)
    config = {**GCP, key: "https://hc.example.com/ping/0b1c", "hydrostream:alerting": {"webhook": True}}
    assert mocks.run_plan("dev", config, program=program).settings.alerting.webhook is True


def test_runbooks_default_to_the_repository_s_web_address_and_a_stack_may_name_another():
    assert alerting().runbook_base_url == "https://github.com/hydrostream/hydrostream/blob/main/"
    assert alerting(runbook_base_url="https://docs.example.com/hydro").runbook_base_url == \
        "https://docs.example.com/hydro/"
    assert parse_settings("local", {}).alerting.runbook_base_url == alerting().runbook_base_url


@pytest.mark.parametrize("url", ["docs/operations.md", "ftp://example.com/hydro/", "https:///path/",
                                 "https://example.com/?page=1", "https://example.com/#ops",
                                 "https://example.com/a b/", "file:///srv/hydro/"])
def test_a_runbook_base_that_is_not_an_absolute_http_url_is_refused_naming_the_key(url):
    message = problems("dev", runbook_base_url=url)
    assert f"hydrostream:alerting.runbook_base_url = {url!r}: expected an absolute http(s) URL" in message
