"""networking.k8s.io Ingress and IngressClass, and the older Ingress shape still served as
networking.k8s.io/v1beta1 and extensions/v1beta1 (a backend names `serviceName` and
`servicePort`)."""

from __future__ import annotations

from kubesvc.api.schema.containers import PROTOCOL
from kubesvc.api.schema.core import TYPED_LOCAL_OBJECT_REFERENCE
from kubesvc.api.schema.dsl import INT32, STRING, STRINGS, Model, array, enum, model, prop
from kubesvc.api.schema.meta import INT_OR_STRING, resource

PATH_TYPE = enum("Exact", "Prefix", "ImplementationSpecific")

SERVICE_BACKEND_PORT = model(
    "io.k8s.api.networking.v1.ServiceBackendPort",
    "ServiceBackendPort is the service port being referenced.",
    prop("name", STRING, "name is the name of the port on the Service."),
    prop("number", INT32, "number is the numerical port number (e.g. 80) on the Service."),
)

INGRESS_SERVICE_BACKEND = model(
    "io.k8s.api.networking.v1.IngressServiceBackend",
    "IngressServiceBackend references a Kubernetes Service as a Backend.",
    prop("name", STRING, "name is the referenced service.", required=True),
    prop("port", SERVICE_BACKEND_PORT, "port of the referenced service."),
)

INGRESS_BACKEND = model(
    "io.k8s.api.networking.v1.IngressBackend",
    "IngressBackend describes all endpoints for a given service and port.",
    prop("service", INGRESS_SERVICE_BACKEND, "service references a service as a backend."),
    prop("resource", TYPED_LOCAL_OBJECT_REFERENCE, "resource is an ObjectRef to another "
         "Kubernetes resource in the namespace of the Ingress object."),
)

INGRESS_TLS = model(
    "io.k8s.api.networking.v1.IngressTLS",
    "IngressTLS describes the transport layer security associated with an ingress.",
    prop("hosts", STRINGS, "hosts is a list of hosts included in the TLS certificate."),
    prop("secretName", STRING, "secretName is the name of the secret used to terminate TLS "
         "traffic on port 443."),
)

HTTP_INGRESS_PATH = model(
    "io.k8s.api.networking.v1.HTTPIngressPath",
    "HTTPIngressPath associates a path with a backend.",
    prop("path", STRING, "path is matched against the path of an incoming request."),
    prop("pathType", PATH_TYPE, "pathType determines the interpretation of the path matching: "
         "Exact, Prefix or ImplementationSpecific.", required=True),
    prop("backend", INGRESS_BACKEND, "backend defines the referenced service endpoint to which "
         "the traffic will be forwarded to.", required=True),
)

HTTP_INGRESS_RULE_VALUE = model(
    "io.k8s.api.networking.v1.HTTPIngressRuleValue",
    "HTTPIngressRuleValue is a list of http selectors pointing to backends.",
    prop("paths", array(HTTP_INGRESS_PATH, list_type="atomic"), "paths is a collection of paths "
         "that map requests to backends.", required=True),
)

INGRESS_RULE = model(
    "io.k8s.api.networking.v1.IngressRule",
    "IngressRule represents the rules mapping the paths under a specified host to the related "
    "backend services.",
    prop("host", STRING, "host is the fully qualified domain name of a network host, as defined "
         "by RFC 3986."),
    prop("http", HTTP_INGRESS_RULE_VALUE, "http is a HTTP IngressRuleValue, which contains a list "
         "of http selectors."),
)

INGRESS_SPEC = model(
    "io.k8s.api.networking.v1.IngressSpec",
    "IngressSpec describes the Ingress the user wishes to exist.",
    prop("ingressClassName", STRING, "ingressClassName is the name of an IngressClass cluster "
         "resource."),
    prop("defaultBackend", INGRESS_BACKEND, "defaultBackend is the backend that should handle "
         "requests that don't match any rule."),
    prop("tls", array(INGRESS_TLS, list_type="atomic"), "tls represents the TLS configuration."),
    prop("rules", array(INGRESS_RULE, list_type="atomic"), "rules is a list of host rules used to "
         "configure the Ingress."),
)

INGRESS_PORT_STATUS = model(
    "io.k8s.api.networking.v1.IngressPortStatus",
    "IngressPortStatus represents the error condition of a service port.",
    prop("port", INT32, "port is the port number of the ingress port.", required=True),
    prop("protocol", PROTOCOL, "protocol is the protocol of the ingress port.", required=True),
    prop("error", STRING, "error records the problem with the service port, as a CamelCase name "
         "(foo.example.com/CamelCase for cloud providers' own)."),
)

INGRESS_LOAD_BALANCER_INGRESS = model(
    "io.k8s.api.networking.v1.IngressLoadBalancerIngress",
    "IngressLoadBalancerIngress represents the status of a load-balancer ingress point.",
    prop("ip", STRING, "ip is set for load-balancer ingress points that are IP based."),
    prop("hostname", STRING, "hostname is set for load-balancer ingress points that are DNS "
         "based."),
    prop("ports", array(INGRESS_PORT_STATUS, list_type="atomic"), "ports provides information "
         "about the ports exposed by this LoadBalancer."),
)

INGRESS_LOAD_BALANCER_STATUS = model(
    "io.k8s.api.networking.v1.IngressLoadBalancerStatus",
    "IngressLoadBalancerStatus represents the status of a load-balancer.",
    prop("ingress", array(INGRESS_LOAD_BALANCER_INGRESS, list_type="atomic"), "ingress is a list "
         "containing ingress points for the load-balancer."),
)

INGRESS_STATUS = model(
    "io.k8s.api.networking.v1.IngressStatus",
    "IngressStatus describe the current state of the Ingress.",
    prop("loadBalancer", INGRESS_LOAD_BALANCER_STATUS, "loadBalancer contains the current status "
         "of the load-balancer."),
)

INGRESS = resource(
    "networking.k8s.io/v1",
    "io.k8s.api.networking.v1.Ingress",
    "Ingress is a collection of rules that allow inbound connections to reach the endpoints "
    "defined by a backend.",
    prop("spec", INGRESS_SPEC, "spec is the desired state of the Ingress."),
    prop("status", INGRESS_STATUS, "status is the current state of the Ingress."),
)

INGRESS_CLASS_PARAMETERS_REFERENCE = model(
    "io.k8s.api.networking.v1.IngressClassParametersReference",
    "IngressClassParametersReference identifies an API object.",
    prop("apiGroup", STRING, "apiGroup is the group for the resource being referenced."),
    prop("kind", STRING, "kind is the type of resource being referenced.", required=True),
    prop("name", STRING, "name is the name of resource being referenced.", required=True),
    prop("scope", STRING, "scope represents if this refers to a cluster or namespace scoped "
         "resource."),
    prop("namespace", STRING, "namespace is the namespace of the resource being referenced."),
)

INGRESS_CLASS_SPEC = model(
    "io.k8s.api.networking.v1.IngressClassSpec",
    "IngressClassSpec provides information about the class of an Ingress.",
    prop("controller", STRING, "controller refers to the name of the controller that should "
         "handle this class."),
    prop("parameters", INGRESS_CLASS_PARAMETERS_REFERENCE, "parameters is a link to a custom "
         "resource containing additional configuration for the controller."),
)

INGRESS_CLASS = resource(
    "networking.k8s.io/v1",
    "io.k8s.api.networking.v1.IngressClass",
    "IngressClass represents the class of the Ingress, referenced by the Ingress Spec.",
    prop("spec", INGRESS_CLASS_SPEC, "spec is the desired state of the IngressClass."),
)


def _ingress_v1beta1(api_version: str, package: str) -> Model:
    """The Ingress of networking.k8s.io/v1beta1 and extensions/v1beta1: one shape, two names."""
    ingress_backend = model(
        f"{package}.IngressBackend",
        "IngressBackend describes all endpoints for a given service and port.",
        prop("serviceName", STRING, "serviceName specifies the name of the referenced service."),
        prop("servicePort", INT_OR_STRING, "servicePort specifies the port of the referenced "
             "service."),
        prop("resource", TYPED_LOCAL_OBJECT_REFERENCE, "resource is an ObjectRef to another "
             "Kubernetes resource in the namespace of the Ingress object."),
    )

    ingress_tls = model(
        f"{package}.IngressTLS",
        "IngressTLS describes the transport layer security associated with an Ingress.",
        prop("hosts", STRINGS, "hosts is a list of hosts included in the TLS certificate."),
        prop("secretName", STRING, "secretName is the name of the secret used to terminate TLS "
             "traffic on port 443."),
    )

    http_ingress_path = model(
        f"{package}.HTTPIngressPath",
        "HTTPIngressPath associates a path with a backend.",
        prop("path", STRING, "path is matched against the path of an incoming request."),
        prop("pathType", PATH_TYPE, "pathType determines the interpretation of the path matching: "
             "Exact, Prefix or ImplementationSpecific."),
        prop("backend", ingress_backend, "backend defines the referenced service endpoint to "
             "which the traffic will be forwarded to.", required=True),
    )

    http_ingress_rule_value = model(
        f"{package}.HTTPIngressRuleValue",
        "HTTPIngressRuleValue is a list of http selectors pointing to backends.",
        prop("paths", array(http_ingress_path, list_type="atomic"), "paths is a collection of "
             "paths that map requests to backends.", required=True),
    )

    ingress_rule = model(
        f"{package}.IngressRule",
        "IngressRule represents the rules mapping the paths under a specified host to the related "
        "backend services.",
        prop("host", STRING, "host is the fully qualified domain name of a network host, as "
             "defined by RFC 3986."),
        prop("http", http_ingress_rule_value, "http is a HTTP IngressRuleValue, which contains a "
             "list of http selectors."),
    )

    ingress_spec = model(
        f"{package}.IngressSpec",
        "IngressSpec describes the Ingress the user wishes to exist.",
        prop("ingressClassName", STRING, "ingressClassName is the name of the IngressClass "
             "cluster resource."),
        prop("backend", ingress_backend, "backend is the default backend capable of servicing "
             "requests that don't match any rule."),
        prop("tls", array(ingress_tls, list_type="atomic"), "tls represents the TLS "
             "configuration."),
        prop("rules", array(ingress_rule, list_type="atomic"), "rules is a list of host rules "
             "used to configure the Ingress."),
    )

    ingress_port_status = model(
        f"{package}.IngressPortStatus",
        "IngressPortStatus represents the error condition of a service port.",
        prop("port", INT32, "port is the port number of the ingress port.", required=True),
        prop("protocol", PROTOCOL, "protocol is the protocol of the ingress port.", required=True),
        prop("error", STRING, "error records the problem with the service port, as a CamelCase "
             "name (foo.example.com/CamelCase for cloud providers' own)."),
    )

    ingress_load_balancer_ingress = model(
        f"{package}.IngressLoadBalancerIngress",
        "IngressLoadBalancerIngress represents the status of a load-balancer ingress point.",
        prop("ip", STRING, "ip is set for load-balancer ingress points that are IP based."),
        prop("hostname", STRING, "hostname is set for load-balancer ingress points that are DNS "
             "based."),
        prop("ports", array(ingress_port_status, list_type="atomic"), "ports provides information "
             "about the ports exposed by this LoadBalancer."),
    )

    ingress_load_balancer_status = model(
        f"{package}.IngressLoadBalancerStatus",
        "LoadBalancerStatus represents the status of a load-balancer.",
        prop("ingress", array(ingress_load_balancer_ingress, list_type="atomic"), "ingress is a "
             "list containing ingress points for the load-balancer."),
    )

    ingress_status = model(
        f"{package}.IngressStatus",
        "IngressStatus describes the current state of the Ingress.",
        prop("loadBalancer", ingress_load_balancer_status, "loadBalancer contains the current "
             "status of the load-balancer."),
    )
    return resource(
        api_version,
        f"{package}.Ingress",
        "Ingress is a collection of rules that allow inbound connections to reach the endpoints "
        "defined by a backend.",
        prop("spec", ingress_spec, "spec is the desired state of the Ingress."),
        prop("status", ingress_status, "status is the current state of the Ingress."),
    )


INGRESS_V1BETA1 = _ingress_v1beta1("networking.k8s.io/v1beta1", "io.k8s.api.networking.v1beta1")
INGRESS_EXTENSIONS = _ingress_v1beta1("extensions/v1beta1", "io.k8s.api.extensions.v1beta1")
