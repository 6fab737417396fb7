"""Format checks on single values, worded as k8s.io/apimachinery/pkg/util/validation words them.

Each `is_*` returns the list of problems (empty when the value is fine), like its Go namesake.
"""

from __future__ import annotations

import ipaddress
import re
from decimal import Decimal, InvalidOperation

from kubesvc.api.validation._field import Errors

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
LABEL_VALUE_MAX = 63

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric "
                      "characters or '-', and must start and end with an alphanumeric character")
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                          "characters, '-' or '.', and must start and end with an alphanumeric "
                          "character")
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL = re.compile(_DNS1035_LABEL_FMT)
_DNS1035_LABEL_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or "
                      "'-', start with an alphabetic character, and end with an alphanumeric "
                      "character")
_WILDCARD_FMT = "\\*\\." + _DNS1123_SUBDOMAIN_FMT
_WILDCARD = re.compile(_WILDCARD_FMT)
_WILDCARD_MSG = ("a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS "
                 "subdomain, which must consist of lower case alphanumeric characters, '-' or "
                 "'.' and end with an alphanumeric character")
_LABEL_KEY_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_KEY = re.compile(_LABEL_KEY_FMT)
_LABEL_KEY_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and "
                  "end with an alphanumeric character")
_LABEL_VALUE_FMT = "(" + _LABEL_KEY_FMT + ")?"
_LABEL_VALUE = re.compile(_LABEL_VALUE_FMT)
_LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, "
                    "'-', '_' or '.', and must start and end with an alphanumeric character")
_PERCENT_FMT = "[0-9]+%"
_PERCENT = re.compile(_PERCENT_FMT)
_HTTP_HEADER_FMT = "[-A-Za-z0-9]+"
_HTTP_HEADER = re.compile(_HTTP_HEADER_FMT)
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
_CONFIG_KEY = re.compile(_CONFIG_KEY_FMT)
_HTTP_PATH_FMT = "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+"
_HTTP_PATH = re.compile(_HTTP_PATH_FMT)


def nbytes(s: str) -> int:
    """Go's len(): bytes, not characters."""
    return len(s.encode("utf-8", "surrogatepass"))


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    ex = " or ".join(f"'{x}', " for x in examples)
    return f"{msg} (e.g. {ex}regex used for validation is '{fmt}')"


def max_len_chars(n: int) -> str:
    return f"must be no more than {n} characters"


def max_len_bytes(n: int) -> str:
    return f"must be no more than {n} bytes"


def inclusive_range(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


def is_dns1123_label(value: str) -> list[str]:
    errs = []
    if nbytes(value) > DNS1123_LABEL_MAX:
        errs.append(max_len_chars(DNS1123_LABEL_MAX))
    if not _DNS1123_LABEL.fullmatch(value):
        if _DNS1123_SUBDOMAIN.fullmatch(value):
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str, max_msg: str = "characters") -> list[str]:
    errs = []
    if nbytes(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(f"must be no more than {DNS1123_SUBDOMAIN_MAX} {max_msg}")
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


_UNDERSCORE_LABEL_FMT = "_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?"
_UNDERSCORE_SUBDOMAIN_FMT = _UNDERSCORE_LABEL_FMT + "(\\." + _UNDERSCORE_LABEL_FMT + ")*"
_UNDERSCORE_SUBDOMAIN = re.compile(_UNDERSCORE_SUBDOMAIN_FMT)


def is_dns1123_subdomain_with_underscore(value: str) -> list[str]:
    errs = []
    if nbytes(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(max_len_chars(DNS1123_SUBDOMAIN_MAX))
    if not _UNDERSCORE_SUBDOMAIN.fullmatch(value):
        errs.append(regex_error("a lowercase RFC 1123 subdomain must consist of lower case "
                                "alphanumeric characters, '_', '-' or '.', and must start and end "
                                "with an alphanumeric character", _UNDERSCORE_SUBDOMAIN_FMT,
                                "example.com"))
    return errs


def is_dns1035_label(value: str) -> list[str]:
    errs = []
    if nbytes(value) > DNS1123_LABEL_MAX:
        errs.append(max_len_chars(DNS1123_LABEL_MAX))
    if not _DNS1035_LABEL.fullmatch(value):
        errs.append(regex_error(_DNS1035_LABEL_MSG, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def is_wildcard_dns1123_subdomain(value: str) -> list[str]:
    errs = []
    if nbytes(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(max_len_chars(DNS1123_SUBDOMAIN_MAX))
    if not _WILDCARD.fullmatch(value):
        errs.append(regex_error(_WILDCARD_MSG, _WILDCARD_FMT, "*.example.com"))
    return errs


def is_qualified_name(value: str) -> list[str]:
    """A label key (and annotation key, finalizer, ...): `[prefix/]name`."""
    errs = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix, "bytes"))
    else:
        return ["a valid label key " + regex_error(_LABEL_KEY_MSG, _LABEL_KEY_FMT, "MyName",
                                                   "my.name", "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part must be non-empty")
    elif nbytes(name) > 63:
        errs.append("name part " + max_len_bytes(63))
    if not _LABEL_KEY.fullmatch(name):
        errs.append("name part " + regex_error(_LABEL_KEY_MSG, _LABEL_KEY_FMT, "MyName",
                                               "my.name", "123-abc"))
    return errs


def is_label_value(value: str) -> list[str]:
    errs = []
    if nbytes(value) > LABEL_VALUE_MAX:
        errs.append(max_len_bytes(LABEL_VALUE_MAX))
    if not _LABEL_VALUE.fullmatch(value):
        errs.append(regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value",
                                "12345"))
    return errs


def is_valid_port_num(port: int) -> list[str]:
    return [] if 1 <= port <= 65535 else [inclusive_range(1, 65535)]


def is_valid_port_name(port: str) -> list[str]:
    errs = []
    if nbytes(port) > 15:
        errs.append(max_len_chars(15))
    if not re.fullmatch("[-a-z0-9]+", port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def is_valid_percent(value: str) -> list[str]:
    if _PERCENT.fullmatch(value):
        return []
    return [regex_error("a valid percent string must be a numeric string followed by an ending "
                        "'%'", _PERCENT_FMT, "1%", "93%")]


def is_http_header_name(value: str) -> list[str]:
    if _HTTP_HEADER.fullmatch(value):
        return []
    return [regex_error("a valid HTTP header must consist of alphanumeric characters or '-'",
                        _HTTP_HEADER_FMT, "X-Header-Name")]


def _chdir_prefix(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


def is_config_map_key(value: str) -> list[str]:
    errs = []
    if nbytes(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(max_len_chars(DNS1123_SUBDOMAIN_MAX))
    if not _CONFIG_KEY.fullmatch(value):
        errs.append(regex_error("a valid config key must consist of alphanumeric characters, "
                                "'-', '_' or '.'", _CONFIG_KEY_FMT, "key.name", "KEY_NAME",
                                "key-name"))
    errs.extend(_chdir_prefix(value))
    return errs


def is_relaxed_env_var_name(value: str) -> list[str]:
    """Env names since RelaxedEnvironmentVariableValidation went GA: printable ASCII but '='."""
    errs = []
    if not value:
        errs.append("environment variable name must be non-empty")
    if any(ord(c) > 0x7E or ord(c) < 0x20 or c == "=" for c in value):
        errs.append("a valid environment variable name must consist only of printable ASCII "
                    "characters other than '='")
    return errs


def is_domain_prefixed_path(e: Errors, path: str, value: str) -> None:
    if not value:
        e.required(path)
        return
    segments = value.split("/", 1)
    if len(segments) != 2 or not segments[0] or not segments[1]:
        e.invalid(path, value, 'must be a domain-prefixed path (such as "acme.io/foo")')
        return
    host, rest = segments
    for msg in is_dns1123_subdomain(host):
        e.invalid(path, host, msg)
    if not _HTTP_PATH.fullmatch(rest):
        e.invalid(path, rest, regex_error("Invalid path", _HTTP_PATH_FMT))


def is_path_segment_name(name: str, prefix: bool = False) -> list[str]:
    if not prefix and name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


def is_fully_qualified_domain_name(e: Errors, path: str, name: str) -> None:
    if not name:
        e.required(path)
        return
    name = name.removesuffix(".")
    errs = is_dns1123_subdomain(name)
    if errs:
        e.invalid(path, name, ",".join(errs))
        return
    labels = name.split(".")
    if len(labels) < 2:
        e.invalid(path, name, "should be a domain with at least two segments separated by dots")
        return
    for label in labels:
        errs = is_dns1123_label(label)
        if errs:
            e.invalid(path, label, ",".join(errs))
            return


# ---------------------------------------------------------------------------------------------
# Object names (ValidateNameFunc): prefix=True for generateName, where a trailing '-' is fine


def _mask_trailing_dash(name: str) -> str:
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


def name_is_dns_subdomain(name: str, prefix: bool) -> list[str]:
    return is_dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool) -> list[str]:
    return is_dns1123_label(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool) -> list[str]:
    return is_dns1035_label(_mask_trailing_dash(name) if prefix else name)


def name_is_path_segment(name: str, prefix: bool) -> list[str]:
    return is_path_segment_name(name, prefix)


# ---------------------------------------------------------------------------------------------
# IP addresses and CIDRs (k8s.io/apimachinery/pkg/util/validation/ip.go)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_ip_sloppy(value: str) -> Address | None:
    """netutils.ParseIPSloppy: Go's old net.ParseIP, which allows IPv4 octets with leading 0s.

    An IPv4-mapped IPv6 address comes back as the IPv4 address, as Go treats it.
    """
    if "%" in value:
        return None
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        m = re.fullmatch(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})", value)
        if not m or any(int(o) > 255 for o in m.groups()):
            return None
        return ipaddress.IPv4Address(".".join(str(int(o)) for o in m.groups()))
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_ipv6_string(value: str) -> bool:
    ip = parse_ip_sloppy(value)
    return isinstance(ip, ipaddress.IPv6Address)


def _strict_errors(value: str) -> list[str]:
    errs = []
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        errs.append("must not have leading 0s")
        return errs
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        errs.append("must not be an IPv4-mapped IPv6 address")
    return errs


def is_valid_ip(e: Errors, path: str, value: str) -> bool:
    """IsValidIP: a strictly parsed IP in canonical form. Returns whether it was valid."""
    ip = parse_ip_sloppy(value)
    if ip is None:
        e.invalid(path, value, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")
        return False
    strict = _strict_errors(value)
    for msg in strict:
        e.invalid(path, value, msg)
    if strict:
        return False
    if value != str(ip):
        e.invalid(path, value, f'must be in canonical form ("{ip}")')
        return False
    return True


def is_valid_ip_legacy(e: Errors, path: str, value: str) -> bool:
    """IsValidIPForLegacyField without strict checks: anything ParseIPSloppy takes."""
    if parse_ip_sloppy(value) is None:
        e.invalid(path, value, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")
        return False
    return True


def is_valid_cidr(e: Errors, path: str, value: str) -> bool:
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        e.invalid(path, value, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")
        return False
    addr = value.split("/", 1)[0]
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        e.invalid(path, value, "must not have leading 0s in IP or prefix length")
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        e.invalid(path, value, "must not have an IPv4-mapped IPv6 address")
        return False
    if ip != net.network_address:
        e.invalid(path, value, "must not have bits set beyond the prefix length")
        return False
    if value != str(net):
        e.invalid(path, value, f'must be in canonical form ("{net}")')
        return False
    return True


def validate_non_special_ip(e: Errors, path: str, value: str) -> None:
    """ValidateNonSpecialIP: no unspecified, loopback or link-local addresses."""
    ip = parse_ip_sloppy(value)
    if ip is None:
        e.invalid(path, value, "must be a valid IP address")
        return
    if ip.is_unspecified:
        e.invalid(path, value, f"may not be unspecified ({value})")
    if ip.is_loopback:
        e.invalid(path, value, "may not be in the loopback range (127.0.0.0/8, ::1/128)")
    if ip.is_link_local:
        e.invalid(path, value, "may not be in the link-local range (169.254.0.0/16, fe80::/10)")
    packed = ip.packed
    if (isinstance(ip, ipaddress.IPv4Address) and packed[:3] == b"\xe0\x00\x00") or (
            isinstance(ip, ipaddress.IPv6Address) and packed[0] == 0xFF
            and packed[1] & 0x0F == 0x02):
        e.invalid(path, value,
                  "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")


# ---------------------------------------------------------------------------------------------
# Resource quantities ("500m", "128Mi", "1e3")

QUANTITY_FORMAT = "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
_QUANTITY = re.compile(r"([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)")
_SUFFIXES = {
    "": Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
    "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30), "Ti": Decimal(2**40),
    "Pi": Decimal(2**50), "Ei": Decimal(2**60),
}


def parse_quantity(value: str | int | float) -> Decimal | None:
    """resource.ParseQuantity's value, or None when the string is not a quantity."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Decimal(str(value))
    m = _QUANTITY.fullmatch(value.strip())
    if not m:
        return None
    number, suffix = m.groups()
    if number.count(".") > 1 or number in (".", "+.", "-.", "+", "-"):
        return None
    try:
        base = Decimal(number)
    except InvalidOperation:
        return None
    if suffix in _SUFFIXES:
        return base * _SUFFIXES[suffix]
    exp = re.fullmatch(r"[eE]([-+]?[0-9]+)", suffix)
    if exp:
        return base * (Decimal(10) ** int(exp.group(1)))
    return None
