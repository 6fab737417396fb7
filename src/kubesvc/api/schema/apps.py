"""apps/v1 Deployment and ReplicaSet, and the autoscaling/v1 Scale of their scale subresource."""

from __future__ import annotations

from kubesvc.api.schema.dsl import BOOL, INT32, INT64, STRING, array, enum, model, prop
from kubesvc.api.schema.meta import INT_OR_STRING, LABEL_SELECTOR, TIME, resource
from kubesvc.api.schema.pods import POD_TEMPLATE_SPEC

DEPLOYMENT_STRATEGY_TYPE = enum("Recreate", "RollingUpdate")

ROLLING_UPDATE_DEPLOYMENT = model(
    "io.k8s.api.apps.v1.RollingUpdateDeployment",
    "Spec to control the desired behavior of rolling update.",
    prop("maxUnavailable", INT_OR_STRING, "The maximum number of pods that can be unavailable "
         "during the update."),
    prop("maxSurge", INT_OR_STRING, "The maximum number of pods that can be scheduled above the "
         "desired number of pods."),
)

DEPLOYMENT_STRATEGY = model(
    "io.k8s.api.apps.v1.DeploymentStrategy",
    "DeploymentStrategy describes how to replace existing pods with new ones.",
    prop("type", DEPLOYMENT_STRATEGY_TYPE, "Type of deployment."),
    prop("rollingUpdate", ROLLING_UPDATE_DEPLOYMENT, "Rolling update config params."),
)

DEPLOYMENT_SPEC = model(
    "io.k8s.api.apps.v1.DeploymentSpec",
    "DeploymentSpec is the specification of the desired behavior of the Deployment.",
    prop("replicas", INT32, "Number of desired pods."),
    prop("selector", LABEL_SELECTOR, "Label selector for pods.", required=True),
    prop("template", POD_TEMPLATE_SPEC, "Template describes the pods that will be created.",
         required=True),
    prop("strategy", DEPLOYMENT_STRATEGY, "The deployment strategy to use to replace existing "
         "pods with new ones.", strategy="retainKeys"),
    prop("minReadySeconds", INT32, "Minimum number of seconds for which a newly created pod "
         "should be ready without any of its container crashing, for it to be considered "
         "available."),
    prop("revisionHistoryLimit", INT32, "The number of old ReplicaSets to retain to allow "
         "rollback."),
    prop("paused", BOOL, "Indicates that the deployment is paused."),
    prop("progressDeadlineSeconds", INT32, "The maximum time in seconds for a deployment to make "
         "progress before it is considered to be failed."),
)

DEPLOYMENT_CONDITION = model(
    "io.k8s.api.apps.v1.DeploymentCondition",
    "DeploymentCondition describes the state of a deployment at a certain point.",
    prop("type", STRING, "Type of deployment condition."),
    prop("status", STRING, "Status of the condition, one of True, False, Unknown."),
    prop("lastUpdateTime", TIME, "The last time this condition was updated."),
    prop("lastTransitionTime", TIME, "Last time the condition transitioned from one status to "
         "another."),
    prop("reason", STRING, "The reason for the condition's last transition."),
    prop("message", STRING, "A human readable message indicating details about the transition."),
)

DEPLOYMENT_STATUS = model(
    "io.k8s.api.apps.v1.DeploymentStatus",
    "DeploymentStatus is the most recently observed status of the Deployment.",
    prop("observedGeneration", INT64, "The generation observed by the deployment controller."),
    prop("replicas", INT32, "Total number of non-terminating pods targeted by this deployment "
         "(their labels match the selector)."),
    prop("updatedReplicas", INT32, "Total number of non-terminating pods targeted by this "
         "deployment that have the desired template spec."),
    prop("readyReplicas", INT32, "Total number of non-terminating pods targeted by this "
         "Deployment with a Ready Condition."),
    prop("availableReplicas", INT32, "Total number of available non-terminating pods (ready for "
         "at least minReadySeconds) targeted by this deployment."),
    prop("unavailableReplicas", INT32, "Total number of unavailable pods targeted by this "
         "deployment."),
    prop("terminatingReplicas", INT32, "Total number of terminating pods targeted by this "
         "deployment."),
    prop("conditions", array(DEPLOYMENT_CONDITION, merge="type"), "Represents the latest "
         "available observations of a deployment's current state."),
    prop("collisionCount", INT32, "Count of hash collisions for the Deployment."),
)

DEPLOYMENT = resource(
    "apps/v1",
    "io.k8s.api.apps.v1.Deployment",
    "Deployment enables declarative updates for Pods and ReplicaSets.",
    prop("spec", DEPLOYMENT_SPEC, "Specification of the desired behavior of the Deployment."),
    prop("status", DEPLOYMENT_STATUS, "Most recently observed status of the Deployment."),
)

REPLICA_SET_SPEC = model(
    "io.k8s.api.apps.v1.ReplicaSetSpec",
    "ReplicaSetSpec is the specification of a ReplicaSet.",
    prop("replicas", INT32, "Replicas is the number of desired pods."),
    prop("minReadySeconds", INT32, "Minimum number of seconds for which a newly created pod "
         "should be ready without any of its container crashing, for it to be considered "
         "available."),
    prop("selector", LABEL_SELECTOR, "Selector is a label query over pods that should match the "
         "replica count.", required=True),
    prop("template", POD_TEMPLATE_SPEC, "Template is the object that describes the pod that will "
         "be created if insufficient replicas are detected."),
)

REPLICA_SET_CONDITION = model(
    "io.k8s.api.apps.v1.ReplicaSetCondition",
    "ReplicaSetCondition describes the state of a replica set at a certain point.",
    prop("type", STRING, "Type of replica set condition."),
    prop("status", STRING, "Status of the condition, one of True, False, Unknown."),
    prop("lastTransitionTime", TIME, "The last time the condition transitioned from one status to "
         "another."),
    prop("reason", STRING, "The reason for the condition's last transition."),
    prop("message", STRING, "A human readable message indicating details about the transition."),
)

REPLICA_SET_STATUS = model(
    "io.k8s.api.apps.v1.ReplicaSetStatus",
    "ReplicaSetStatus represents the current status of a ReplicaSet.",
    prop("replicas", INT32, "Replicas is the most recently observed number of non-terminating "
         "pods.", required=True),
    prop("fullyLabeledReplicas", INT32, "The number of non-terminating pods that have labels "
         "matching the labels of the pod template of the replicaset."),
    prop("readyReplicas", INT32, "The number of non-terminating pods targeted by this ReplicaSet "
         "with a Ready Condition."),
    prop("availableReplicas", INT32, "The number of available non-terminating pods (ready for at "
         "least minReadySeconds) for this replica set."),
    prop("terminatingReplicas", INT32, "The number of terminating pods for this replica set."),
    prop("observedGeneration", INT64, "ObservedGeneration reflects the generation of the most "
         "recently observed ReplicaSet."),
    prop("conditions", array(REPLICA_SET_CONDITION, merge="type"), "Represents the latest "
         "available observations of a replica set's current state."),
)

REPLICA_SET = resource(
    "apps/v1",
    "io.k8s.api.apps.v1.ReplicaSet",
    "ReplicaSet ensures that a specified number of pod replicas are running at any given time.",
    prop("spec", REPLICA_SET_SPEC, "Spec defines the specification of the desired behavior of the "
         "ReplicaSet."),
    prop("status", REPLICA_SET_STATUS, "Status is the most recently observed status of the "
         "ReplicaSet."),
)

SCALE_SPEC = model(
    "io.k8s.api.autoscaling.v1.ScaleSpec",
    "ScaleSpec describes the attributes of a scale subresource.",
    prop("replicas", INT32, "replicas is the desired number of instances for the scaled object."),
)

SCALE_STATUS = model(
    "io.k8s.api.autoscaling.v1.ScaleStatus",
    "ScaleStatus represents the current status of a scale subresource.",
    prop("replicas", INT32, "replicas is the actual number of observed instances of the scaled "
         "object.", required=True),
    prop("selector", STRING, "selector is the label query over pods that should match the "
         "replicas count."),
)

SCALE = resource(
    "autoscaling/v1",
    "io.k8s.api.autoscaling.v1.Scale",
    "Scale represents a scaling request for a resource.",
    prop("spec", SCALE_SPEC, "spec defines the behavior of the scale."),
    prop("status", SCALE_STATUS, "status is the current status of the scale."),
)
