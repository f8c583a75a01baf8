"""What a container entry is made of, decided by the first RDN of its DN.

idsync creates containers (``idsync directory add-container``, a job's
``create_container``) from their DN alone, so the naming attribute decides
the object class, from the standard schema (RFC 4519, RFC 4524):

=========  ======================  ==========================================
RDN        object class            notes
=========  ======================  ==========================================
``ou=``    ``organizationalUnit``  the usual container
``o=``     ``organization``
``dc=``    ``domain``              one structural class; ``dcObject`` is
                                   auxiliary and needs another class with it
``c=``     ``country``             a two-letter code
``l=``     ``locality``
``st=``    ``locality``            the value is written as ``st``
``cn=``    ``container``           Active Directory stores only (``cn=Users``)
=========  ======================  ==========================================

Any other naming attribute (``cn`` outside Active Directory included) has
no container class everyone agrees on: it is refused with a hint to name the
container ``ou=...`` or to create it from LDIF.
"""

from __future__ import annotations

from idsync.domain.dn import parse_dn
from idsync.domain.entry import Attrs
from idsync.errors import ConfigError

CLASSES: dict[str, tuple[str, ...]] = {
    "ou": ("top", "organizationalUnit"),
    "o": ("top", "organization"),
    "dc": ("top", "domain"),
    "c": ("top", "country"),
    "l": ("top", "locality"),
    "st": ("top", "locality"),
}
ACTIVE_DIRECTORY_CLASSES: dict[str, tuple[str, ...]] = {**CLASSES, "cn": ("top", "container")}

_LONG_NAMES = {
    "organizationalunitname": "ou",
    "organizationname": "o",
    "domaincomponent": "dc",
    "countryname": "c",
    "localityname": "l",
    "stateorprovincename": "st",
    "commonname": "cn",
}


def container_attrs(dn: str, flavor: str = "generic") -> Attrs:
    """The attributes of a new container entry at *dn* (its RDN values included).

    Raises ConfigError for a DN whose naming attribute has no container class.
    """
    rdns = parse_dn(dn)
    if not rdns:
        raise ConfigError("the root of a directory is not a container that can be created")
    rdn = rdns[0]
    table = ACTIVE_DIRECTORY_CLASSES if flavor == "active_directory" else CLASSES
    first = rdn[0][0].lower()
    first = _LONG_NAMES.get(first, first)
    classes = table.get(first)
    if classes is None:
        known = ", ".join(f"{t}=" for t in table)
        raise ConfigError(
            f"cannot tell which object class the container {dn!r} needs: containers are created "
            f"for names starting with {known}",
            hint="name the container ou=..., or create it from an LDIF file",
        )
    return Attrs([("objectClass", classes), *((type_, (value,)) for type_, value in rdn)])
