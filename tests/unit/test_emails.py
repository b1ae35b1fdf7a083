"""The email and domain rules (README.md#how-meetings-are-matched-to-accounts): comparison, account-domain
normalisation, parent domains bounded by the public suffix list, free-mail domains, internal domains."""

from __future__ import annotations

import pytest

from shared.domain.emails import (
    candidate_domains,
    email_domain,
    is_free_mail,
    is_internal_domain,
    is_valid_domain,
    is_valid_email,
    normalize_domain,
    normalize_email,
    registrable_domain,
)


def test_emails_are_compared_trimmed_and_case_insensitively() -> None:
    assert normalize_email("  Bob.Smith@Logo.COM\t") == "bob.smith@logo.com"


def test_email_normalisation_does_not_strip_plus_tags_or_dots() -> None:
    assert normalize_email("B.o.b+CRM@gmail.com") == "b.o.b+crm@gmail.com"


def test_email_domain_is_the_part_after_the_last_at() -> None:
    assert email_domain("bob@eu.logo.co.uk") == "eu.logo.co.uk"
    assert email_domain("no-at-sign") == ""


@pytest.mark.parametrize(
    ("email", "valid"),
    [
        ("bob@logo.com", True),
        ("bob@logo", False),
        ("@logo.com", False),
        ("bob", False),
        ("b b@logo.com", False),
    ],
)
def test_email_shape_check(email: str, valid: bool) -> None:
    assert is_valid_email(email) is valid


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("https://www.Logo.com/", "logo.com"),
        ("http://logo.com/about?x=1", "logo.com"),
        ("WWW.logo.co.uk", "logo.co.uk"),
        ("logo.com.", "logo.com"),
        ("logo.com:443", "logo.com"),
        ("  Logo.com  ", "logo.com"),
        ("sales@logo.com", "logo.com"),
        ("eu.logo.co.uk", "eu.logo.co.uk"),
    ],
)
def test_account_domains_are_compared_normalised(raw: str, normalised: str) -> None:
    assert normalize_domain(raw) == normalised


def test_domain_shape_check() -> None:
    assert is_valid_domain("logo.co.uk")
    assert not is_valid_domain("logo")
    assert not is_valid_domain("-logo.com")
    assert not is_valid_domain("lo go.com")


def test_parent_domains_stop_at_the_registrable_domain() -> None:
    assert candidate_domains("eu.logo.co.uk") == ("eu.logo.co.uk", "logo.co.uk")


def test_parent_domains_are_tried_one_label_at_a_time() -> None:
    assert candidate_domains("a.b.logo.com") == ("a.b.logo.com", "b.logo.com", "logo.com")


def test_registrable_domain_yields_only_itself() -> None:
    assert candidate_domains("logo.com") == ("logo.com",)


def test_public_suffix_is_never_a_candidate_level() -> None:
    assert "co.uk" not in candidate_domains("eu.logo.co.uk")
    assert registrable_domain("co.uk") is None
    assert candidate_domains("co.uk") == ("co.uk",)


def test_private_public_suffixes_bound_the_parent_steps() -> None:
    assert candidate_domains("docs.acme.github.io") == ("docs.acme.github.io", "acme.github.io")


@pytest.mark.parametrize("domain", ["gmail.com", "outlook.com", "yahoo.com", "hotmail.co.uk", "icloud.com"])
def test_free_mail_domains_come_from_a_maintained_list(domain: str) -> None:
    assert is_free_mail(domain)


def test_subdomain_of_free_mail_domain_is_free_mail() -> None:
    assert is_free_mail("eu.outlook.com")


def test_company_domain_is_not_free_mail() -> None:
    assert not is_free_mail("logo.co.uk")


def test_tenant_allowed_free_mail_domain_is_not_free_mail() -> None:
    assert not is_free_mail("gmail.com", frozenset({"gmail.com"}))
    assert not is_free_mail("gmail.com", ["gmail.com"])
    assert is_free_mail("yahoo.com", frozenset({"gmail.com"}))


def test_internal_domain_and_its_subdomains_are_internal() -> None:
    assert is_internal_domain("cs.example", ("cs.example",))
    assert is_internal_domain("eu.cs.example", ("other.org", "cs.example"))


def test_domain_merely_ending_with_internal_text_is_not_internal() -> None:
    assert not is_internal_domain("notcs.example", ("cs.example",))
    assert not is_internal_domain("cs.example.com", ("cs.example",))
