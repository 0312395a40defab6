"""Which channels are trunk lines: the classifier VICIdial's AST_update applies, made configurable.

Rules this module keeps (spec/VICIDIAL_FILL.md 7.3, spec/AMI.md C 4.4):

* A channel name is ``<Technology>/<peer>-<sequence>`` (``SIP/carrier-00000b21``,
  ``PJSIP/carrier-0000001a``, ``IAX2/carrier-12345``, ``DAHDI/1-1``) or ``Local/<exten>@<context>-<seq>;<n>``.
  The peer is what lies between the ``/`` and the last ``-``.
* By default SIP, PJSIP, IAX2 and DAHDI channels are trunks; ``Local/…`` is not (VICIdial counts
  those as CLIENT channels); ``DAHDI/pseudo`` is ignored. Any other technology is not a trunk.
* Agent phones are configured away by exact peer name (``excluded_peers``, what AST_update reads
  from the ``phones`` table) or by peer-name prefix (``excluded_peer_prefixes``). Whole channel
  name prefixes can be excluded too (``excluded_channel_prefixes``, default ``DAHDI/pseudo``).
* Technology names compare case-insensitively (``sip/x-1`` is SIP); peer names exactly, as Asterisk
  and the ``phones`` table spell them.
* Classification reads only the channel name and never raises: an empty or odd name is not a trunk.
* Trunk counts are for reporting only; line usage is counted from VICIdial call ids (model.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

DEFAULT_TRUNK_TECHNOLOGIES: frozenset[str] = frozenset({"SIP", "PJSIP", "IAX2", "DAHDI"})
DEFAULT_EXCLUDED_CHANNEL_PREFIXES: tuple[str, ...] = ("DAHDI/pseudo",)


def split_channel_name(channel: str) -> tuple[str, str]:
    """(technology, peer) of a channel name; ``('', '')`` when there is no ``/``.

    >>> split_channel_name("SIP/my-carrier-00000b21")
    ('SIP', 'my-carrier')
    """
    technology, slash, rest = channel.partition("/")
    if not slash:
        return "", ""
    peer, dash, _sequence = rest.rpartition("-")
    return technology, peer if dash else rest


@dataclass(frozen=True, slots=True)
class TrunkClassifier:
    """Decides whether a channel is a trunk line (VICIdial's TRUNK vs CLIENT)."""

    technologies: frozenset[str] = DEFAULT_TRUNK_TECHNOLOGIES
    excluded_peers: frozenset[str] = field(default_factory=frozenset)
    excluded_peer_prefixes: tuple[str, ...] = ()
    excluded_channel_prefixes: tuple[str, ...] = DEFAULT_EXCLUDED_CHANNEL_PREFIXES

    def __post_init__(self) -> None:
        # normalise whatever iterable was passed, so configuration can hand in lists
        object.__setattr__(self, "technologies", frozenset(t.upper() for t in self.technologies))
        object.__setattr__(self, "excluded_peers", frozenset(self.excluded_peers))
        object.__setattr__(self, "excluded_peer_prefixes", tuple(self.excluded_peer_prefixes))
        object.__setattr__(self, "excluded_channel_prefixes", tuple(self.excluded_channel_prefixes))

    @classmethod
    def from_config(
        cls,
        *,
        technologies: str | Iterable[str] | None = None,
        excluded_peers: str | Iterable[str] = (),
        excluded_peer_prefixes: str | Iterable[str] = (),
        excluded_channel_prefixes: str | Iterable[str] | None = None,
    ) -> TrunkClassifier:
        """Build from configuration values: comma-separated strings or iterables; None keeps a default."""
        return cls(
            technologies=(
                DEFAULT_TRUNK_TECHNOLOGIES if technologies is None else frozenset(_words(technologies))
            ),
            excluded_peers=frozenset(_words(excluded_peers)),
            excluded_peer_prefixes=tuple(_words(excluded_peer_prefixes)),
            excluded_channel_prefixes=(
                DEFAULT_EXCLUDED_CHANNEL_PREFIXES
                if excluded_channel_prefixes is None
                else tuple(_words(excluded_channel_prefixes))
            ),
        )

    def is_trunk(self, channel: str) -> bool:
        technology, peer = split_channel_name(channel)
        if not technology or technology.upper() not in self.technologies:
            return False
        if self.excluded_channel_prefixes and channel.startswith(self.excluded_channel_prefixes):
            return False
        if peer in self.excluded_peers:
            return False
        return not (self.excluded_peer_prefixes and peer.startswith(self.excluded_peer_prefixes))


def _words(value: str | Iterable[str]) -> list[str]:
    items = value.split(",") if isinstance(value, str) else list(value)
    return [item.strip() for item in items if item.strip()]


DEFAULT_CLASSIFIER = TrunkClassifier()
