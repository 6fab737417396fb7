"""discovery.k8s.io/v1 EndpointSlice: the ready and serving addresses behind a Service."""

from __future__ import annotations

from kubesvc.api.schema.containers import PROTOCOL
from kubesvc.api.schema.core import OBJECT_REFERENCE
from kubesvc.api.schema.dsl import BOOL, INT32, STRING, array, map_of, model, prop
from kubesvc.api.schema.meta import resource

ENDPOINT_CONDITIONS = model(
    "io.k8s.api.discovery.v1.EndpointConditions",
    "EndpointConditions represents the current condition of an endpoint.",
    prop("ready", BOOL, "ready indicates that this endpoint is ready to receive traffic, "
         "according to whatever system is managing the endpoint."),
    prop("serving", BOOL, "serving indicates that this endpoint is able to receive traffic, "
         "according to whatever system is managing the endpoint."),
    prop("terminating", BOOL, "terminating indicates that this endpoint is terminating."),
)

FOR_ZONE = model(
    "io.k8s.api.discovery.v1.ForZone",
    "ForZone provides information about which zones should consume this endpoint.",
    prop("name", STRING, "name represents the name of the zone.", required=True),
)

FOR_NODE = model(
    "io.k8s.api.discovery.v1.ForNode",
    "ForNode provides information about which nodes should consume this endpoint.",
    prop("name", STRING, "name represents the name of the node.", required=True),
)

ENDPOINT_HINTS = model(
    "io.k8s.api.discovery.v1.EndpointHints",
    "EndpointHints provides hints describing how an endpoint should be consumed.",
    prop("forZones", array(FOR_ZONE, list_type="atomic"), "forZones indicates the zone(s) this "
         "endpoint should be consumed by when using topology aware routing."),
    prop("forNodes", array(FOR_NODE, list_type="atomic"), "forNodes indicates the node(s) this "
         "endpoint should be consumed by when using topology aware routing."),
)

ENDPOINT = model(
    "io.k8s.api.discovery.v1.Endpoint",
    "Endpoint represents a single logical \"backend\" implementing a service.",
    prop("addresses", array(STRING, list_type="set"), "addresses of this endpoint.", required=True),
    prop("conditions", ENDPOINT_CONDITIONS, "conditions contains information about the current "
         "status of the endpoint."),
    prop("hostname", STRING, "hostname of this endpoint."),
    prop("targetRef", OBJECT_REFERENCE, "targetRef is a reference to a Kubernetes object that "
         "represents this endpoint."),
    prop("deprecatedTopology", map_of(), "deprecatedTopology contains topology information part "
         "of the v1beta1 API; deprecated."),
    prop("nodeName", STRING, "nodeName represents the name of the Node hosting this endpoint."),
    prop("zone", STRING, "zone is the name of the Zone this endpoint exists in."),
    prop("hints", ENDPOINT_HINTS, "hints contains information associated with how an endpoint "
         "should be consumed."),
)

ENDPOINT_PORT = model(
    "io.k8s.api.discovery.v1.EndpointPort",
    "EndpointPort represents a Port used by an EndpointSlice.",
    prop("name", STRING, "name represents the name of this port."),
    prop("protocol", PROTOCOL, "protocol represents the IP protocol for this port."),
    prop("port", INT32, "port represents the port number of the endpoint."),
    prop("appProtocol", STRING, "The application protocol for this port."),
)

ENDPOINT_SLICE = resource(
    "discovery.k8s.io/v1",
    "io.k8s.api.discovery.v1.EndpointSlice",
    "EndpointSlice represents a set of service endpoints.",
    prop("addressType", STRING, "addressType specifies the type of address carried by this "
         "EndpointSlice.", required=True),
    prop("endpoints", array(ENDPOINT, list_type="atomic"), "endpoints is a list of unique "
         "endpoints in this slice."),
    prop("ports", array(ENDPOINT_PORT, list_type="atomic"), "ports specifies the list of network "
         "ports exposed by each endpoint in this slice."),
)
