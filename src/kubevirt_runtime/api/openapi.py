"""Tiny builders for OpenAPI v3 (structural) schema nodes, as CRDs need them."""


def obj(description, properties=None, required=None, preserve_unknown=False):
    node = {"type": "object", "description": description}
    if properties is not None:
        node["properties"] = properties
    if required:
        node["required"] = list(required)
    if preserve_unknown:
        node["x-kubernetes-preserve-unknown-fields"] = True
    return node


def empty_obj(description):
    """An object that takes no fields, e.g. `masquerade: {}`."""
    return {"type": "object", "description": description}


def free_obj(description):
    """An object passed through as is (Kubernetes types such as affinity)."""
    return {"type": "object", "description": description, "x-kubernetes-preserve-unknown-fields": True}


def string(description, enum=None, pattern=None, fmt=None, nullable=False):
    node = {"type": "string", "description": description}
    if enum:
        node["enum"] = list(enum)
    if pattern:
        node["pattern"] = pattern
    if fmt:
        node["format"] = fmt
    if nullable:
        node["nullable"] = True
    return node


def timestamp(description):
    return string(description, fmt="date-time", nullable=True)


def integer(description, minimum=None, maximum=None, fmt="int64"):
    node = {"type": "integer", "description": description, "format": fmt}
    if minimum is not None:
        node["minimum"] = minimum
    if maximum is not None:
        node["maximum"] = maximum
    return node


def boolean(description):
    return {"type": "boolean", "description": description}


def quantity(description):
    """A Kubernetes resource.Quantity: `1Gi`, `500m`, `2`."""
    return {
        "description": description,
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "x-kubernetes-int-or-string": True,
        "pattern": r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
                   r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$",
    }


def string_map(description):
    return {"type": "object", "description": description, "additionalProperties": {"type": "string"}}


def quantity_map(description):
    item = quantity("")
    del item["description"]
    return {"type": "object", "description": description, "additionalProperties": item}


def array(description, items, list_type=None, map_keys=None):
    node = {"type": "array", "description": description, "items": items}
    if list_type:
        node["x-kubernetes-list-type"] = list_type
    if map_keys:
        node["x-kubernetes-list-map-keys"] = list(map_keys)
    return node
