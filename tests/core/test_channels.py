"""The trunk-channel classifier: VICIdial AST_update defaults and configuration."""

from __future__ import annotations

import pytest

from fillreactor.core.channels import DEFAULT_CLASSIFIER, TrunkClassifier, split_channel_name


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        ("SIP/carrier-00000b21", ("SIP", "carrier")),
        ("PJSIP/my-carrier-0000001a", ("PJSIP", "my-carrier")),
        ("IAX2/carrier-12345", ("IAX2", "carrier")),
        ("DAHDI/1-1", ("DAHDI", "1")),
        ("DAHDI/pseudo", ("DAHDI", "pseudo")),
        ("Local/918005551212@default-00000000;1", ("Local", "918005551212@default")),
        ("nonsense", ("", "")),
        ("", ("", "")),
    ],
)
def test_split_channel_name(channel: str, expected: tuple[str, str]) -> None:
    assert split_channel_name(channel) == expected


@pytest.mark.parametrize(
    ("channel", "is_trunk"),
    [
        ("SIP/carrier-00000b21", True),
        ("PJSIP/carrier-0000001a", True),
        ("IAX2/carrier-12345", True),
        ("DAHDI/1-1", True),
        ("sip/carrier-00000b21", True),  # technology compares case-insensitively
        ("DAHDI/pseudo", False),  # VICIdial ignores the pseudo channel
        ("DAHDI/pseudo-123", False),
        ("Local/918005551212@default-00000000;1", False),  # Local = CLIENT in AST_update
        ("Local/18005551212@trunk-00000001;2", False),
        ("Console/dsp", False),
        ("Message/ast_msg_queue", False),
        ("", False),
        ("SIP", False),
    ],
)
def test_default_classifier(channel: str, is_trunk: bool) -> None:
    assert DEFAULT_CLASSIFIER.is_trunk(channel) is is_trunk


CONFIGURED = TrunkClassifier.from_config(
    technologies="SIP, PJSIP",
    excluded_peers=["agent100", "cc101"],
    excluded_peer_prefixes="phone_,ext",
)


@pytest.mark.parametrize(
    ("channel", "is_trunk"),
    [
        ("SIP/carrier-00000001", True),
        ("PJSIP/carrier-00000001", True),
        ("IAX2/carrier-12345", False),  # technology no longer configured
        ("DAHDI/1-1", False),
        ("SIP/agent100-00000002", False),  # excluded by exact peer name (a phone)
        ("PJSIP/cc101-00000003", False),
        ("SIP/agent1000-00000002", True),  # exact names are exact
        ("SIP/phone_22-00000004", False),  # excluded by peer prefix
        ("PJSIP/ext7-00000005", False),
        ("SIP/carrier_ext-00000005", True),  # a prefix is a prefix
    ],
)
def test_configured_classifier(channel: str, is_trunk: bool) -> None:
    assert CONFIGURED.is_trunk(channel) is is_trunk


def test_from_config_defaults_match_the_default_classifier() -> None:
    assert TrunkClassifier.from_config() == DEFAULT_CLASSIFIER
    assert DEFAULT_CLASSIFIER.technologies == frozenset({"SIP", "PJSIP", "IAX2", "DAHDI"})
    assert DEFAULT_CLASSIFIER.excluded_channel_prefixes == ("DAHDI/pseudo",)


def test_excluded_channel_prefixes_and_lowercase_technologies_are_configurable() -> None:
    classifier = TrunkClassifier(technologies=["sip", "local"], excluded_channel_prefixes=["Local/8"])
    assert classifier.technologies == frozenset({"SIP", "LOCAL"})
    assert classifier.is_trunk("Local/918005551212@default-00000000;1")
    assert not classifier.is_trunk("Local/8365@default-00000000;1")
    assert TrunkClassifier.from_config(excluded_channel_prefixes="").is_trunk("DAHDI/pseudo")
