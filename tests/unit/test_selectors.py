import pytest

from kubesvc.api import selectors
from kubesvc.api.errors import ApiError


@pytest.mark.parametrize(("text", "labels", "expected"), [
    ("run=nginx", {"run": "nginx"}, True),
    ("run==nginx", {"run": "nginx"}, True),
    ("run=nginx", {"run": "web"}, False),
    ("run!=nginx", {}, True),
    ("run!=nginx", {"run": "nginx"}, False),
    ("env in (prod, dev)", {"env": "dev"}, True),
    ("env in (prod, dev)", {"env": "qa"}, False),
    ("env notin (prod)", {}, True),
    ("env notin (prod)", {"env": "prod"}, False),
    ("tier", {"tier": ""}, True),
    ("!tier", {"tier": "x"}, False),
    ("run=nginx,env in (a,b),!canary", {"run": "nginx", "env": "b"}, True),
    ("run=nginx,env in (a,b),!canary", {"run": "nginx", "env": "b", "canary": "1"}, False),
    ("", {"x": "y"}, True),
])
def test_label_selector_strings(text: str, labels: dict[str, str], expected: bool) -> None:
    assert selectors.matches(selectors.parse_label_selector(text), labels) is expected


def test_structured_selector_and_its_string_form() -> None:
    sel = {"matchLabels": {"run": "nginx"},
           "matchExpressions": [{"key": "env", "operator": "In", "values": ["b", "a"]},
                                {"key": "canary", "operator": "DoesNotExist"}]}
    parsed = selectors.from_label_selector(sel)
    assert selectors.matches(parsed, {"run": "nginx", "env": "a"})
    assert not selectors.matches(parsed, {"run": "nginx", "env": "a", "canary": "y"})
    text = selectors.format_label_selector(sel)
    assert text == "run=nginx,env in (a,b),!canary"
    assert selectors.parse_label_selector(text) == parsed


@pytest.mark.parametrize("bad", ["a=b=c", "env in (x", "!x in (a)"])
def test_malformed_selectors_are_bad_requests(bad: str) -> None:
    with pytest.raises(ApiError) as err:
        selectors.parse_label_selector(bad)
    assert err.value.code == 400


def test_field_selectors_per_kind() -> None:
    pod = {"kind": "Pod", "metadata": {"name": "a", "namespace": "default"},
           "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}}
    accept = selectors.object_filter(None, "spec.nodeName=n1,status.phase!=Failed", "Pod")
    assert accept(pod)
    assert not selectors.object_filter(None, "metadata.name=b", "Pod")(pod)
    with pytest.raises(ApiError, match=r"field label not supported: spec\.foo"):
        selectors.parse_field_selector("spec.foo=x", "Pod")


def test_event_involved_object_selector() -> None:
    event = {"kind": "Event", "metadata": {"name": "e", "namespace": "default"},
             "involvedObject": {"kind": "Service", "name": "nginx", "namespace": "default",
                                "uid": "u1"}}
    sel = ("involvedObject.name=nginx,involvedObject.namespace=default,"
           "involvedObject.kind=Service,involvedObject.uid=u1")
    assert selectors.object_filter(None, sel, "Event")(event)
    assert not selectors.object_filter(None, "involvedObject.name=other", "Event")(event)
