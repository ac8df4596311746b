#!/usr/bin/env python3
"""Write the print subset of Microsoft Graph v1.0 as an OpenAPI 3.0 description, from Microsoft's CSDL.

Input: Microsoft's published Graph v1.0 metadata (CSDL), `clean_v10_metadata/cleanMetadata.xml` in
https://github.com/microsoftgraph/msgraph-metadata (MIT licence). The same repository publishes
`openapi/v1.0/openapi.yaml`, Microsoft's conversion of this metadata (with descriptions added) to
OpenAPI; the CSDL is read here because it is a fraction of the size and parses with Python's standard
library (no YAML parser, no pip), and this script follows the rules of that conversion (listed below).

Output (stdout or --out): JSON, deterministic for a given input and arguments. It holds every path and
method pullprintd calls (the print and subscription operations, with their neighbours), the request
body of each operation, and the schemas those bodies reach. `tests/support/graph_schema.rs` validates
every Graph request the client sends during the tests against it.

Usage:
    scripts/graph-schema/extract-print-openapi.py path/to/cleanMetadata.xml \
        --source-commit <msgraph-metadata commit> --source-date <its date> \
        --out tests/data/graph/print-openapi-v1.0.json

Conversion rules (those of Microsoft's OpenAPI conversion, written down where the result differs):
- Paths use key-as-segment and `{<entityType>-id}` parameters, bound actions without their namespace,
  as in Microsoft's openapi.yaml.
- A collection gets GET and POST, an item GET, PATCH and DELETE, a bound action POST (an action bound to a
  collection, such as `…/jobs/release`, sits on the collection's path). POST and PATCH bodies are the
  entity's schema (no required properties: Graph fills in ids and defaults).
- A navigation property without `ContainsTarget` refers to entities that live elsewhere (a pull printer's
  member `printers`): it gets GET only. Its members are added and removed through `…/$ref`, left out here.
- An action's body is an object of its non-binding parameters. A non-nullable parameter is required:
  OData 4.01 (Part 1, "Invoking an Action") lets a client omit only nullable or optional parameters.
- Nullability follows the CSDL (`Nullable` defaults to true). A nullable reference is written
  `anyOf: [{$ref}, {type: object, nullable: true, not: {type: object}}]` ("the type, or null"), because
  OpenAPI 3.0.3 ignores `nullable` on a schema without `type`.
- Navigation properties are left out of the schemas (their absence keeps the subset small; an inline
  navigation property is still accepted, as unknown properties are: Graph's schemas never set
  `additionalProperties: false`).
- GET operations declare the OData query options; `$select` and `$expand` list the allowed names.

Native pull printing (`PULL_PRINT_PATHS`) is kept when the metadata defines it: each of those paths the
metadata lacks is left out and named in `info.x-paths-not-in-source` (and on stderr), so the description
never holds an operation Microsoft's metadata does not, and a refresh from a snapshot that has them shows
them moving into `paths`. Properties need no list: every structural property of a kept entity is written
(`printer.printerProvidedReleaseSupport` appears with the metadata that defines it).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import xml.etree.ElementTree as ET

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
NS = "microsoft.graph"

# Every path pullprintd calls, and the neighbours that make each resource complete (list, item,
# actions). A segment in braces is a key; anything else is a navigation property or a bound action.
PATHS = [
    "/print/printers",
    "/print/printers/{printer-id}",
    "/print/printers/{printer-id}/jobs",
    "/print/printers/{printer-id}/jobs/{printJob-id}",
    "/print/printers/{printer-id}/jobs/{printJob-id}/abort",
    "/print/printers/{printer-id}/jobs/{printJob-id}/cancel",
    "/print/printers/{printer-id}/jobs/{printJob-id}/redirect",
    "/print/printers/{printer-id}/jobs/{printJob-id}/start",
    "/print/printers/{printer-id}/jobs/{printJob-id}/documents",
    "/print/printers/{printer-id}/jobs/{printJob-id}/documents/{printDocument-id}",
    "/print/printers/{printer-id}/jobs/{printJob-id}/tasks",
    "/print/printers/{printer-id}/jobs/{printJob-id}/tasks/{printTask-id}",
    "/print/printers/{printer-id}/taskTriggers",
    "/print/printers/{printer-id}/taskTriggers/{printTaskTrigger-id}",
    "/print/taskDefinitions",
    "/print/taskDefinitions/{printTaskDefinition-id}",
    "/print/taskDefinitions/{printTaskDefinition-id}/tasks",
    "/print/taskDefinitions/{printTaskDefinition-id}/tasks/{printTask-id}",
    "/subscriptions",
    "/subscriptions/{subscription-id}",
    "/subscriptions/{subscription-id}/reauthorize",
]

# Native pull printing: a pull printer (a virtual printer inheriting printerBase) holds a person's jobs until
# they are released at one of its member printers. Kept when the metadata defines them (see above).
PULL_PRINT_PATHS = [
    "/print/printers/{printer-id}/jobs/release",
    "/print/pullPrintPrinters",
    "/print/pullPrintPrinters/{pullPrintPrinter-id}",
    "/print/pullPrintPrinters/{pullPrintPrinter-id}/printers",
    "/print/pullPrintPrinters/{pullPrintPrinter-id}/jobs",
    "/print/pullPrintPrinters/{pullPrintPrinter-id}/jobs/{printJob-id}",
]

COLLECTION_QUERY = ["$top", "$skip", "$search", "$filter", "$count", "$orderby", "$select", "$expand"]
ITEM_QUERY = ["$select", "$expand"]

# Microsoft's openapi.yaml spells the primitive types this way (ranges of the integer types added).
PRIMITIVES = {
    "Edm.String": {"type": "string"},
    "Edm.Boolean": {"type": "boolean"},
    "Edm.Byte": {"type": "integer", "format": "uint8", "minimum": 0, "maximum": 255},
    "Edm.SByte": {"type": "integer", "format": "int8", "minimum": -128, "maximum": 127},
    "Edm.Int16": {"type": "integer", "format": "int16", "minimum": -32768, "maximum": 32767},
    "Edm.Int32": {"type": "integer", "format": "int32", "minimum": -2147483648, "maximum": 2147483647},
    "Edm.Int64": {"type": "integer", "format": "int64"},
    "Edm.Single": {"anyOf": [{"type": "number"}, {"type": "string", "enum": ["-INF", "INF", "NaN"]}]},
    "Edm.Double": {"anyOf": [{"type": "number"}, {"type": "string", "enum": ["-INF", "INF", "NaN"]}]},
    "Edm.Decimal": {"anyOf": [{"type": "number"}, {"type": "string"}]},
    "Edm.DateTimeOffset": {"type": "string", "format": "date-time"},
    "Edm.Date": {"type": "string", "format": "date"},
    "Edm.TimeOfDay": {"type": "string", "format": "time"},
    "Edm.Duration": {"type": "string", "format": "duration"},
    "Edm.Guid": {"type": "string", "format": "uuid"},
    "Edm.Binary": {"type": "string", "format": "base64url"},
    "Edm.Stream": {"type": "string", "format": "base64url"},
    "Edm.Untyped": {},
}


def local(name: str) -> str:
    """`graph.printer` / `microsoft.graph.printer` -> `printer`."""
    return name.rsplit(".", 1)[-1]


def unwrap(type_name: str) -> tuple[str, bool]:
    if type_name.startswith("Collection(") and type_name.endswith(")"):
        return type_name[len("Collection(") : -1], True
    return type_name, False


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{NS}.{name}"}


def or_null(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "object", "nullable": True, "not": {"type": "object"}}]}


class NotInMetadata(Exception):
    """A segment of a path template names nothing the metadata defines."""


class Model:
    def __init__(self, root: ET.Element):
        self.entities: dict[str, ET.Element] = {}
        self.complexes: dict[str, ET.Element] = {}
        self.enums: dict[str, ET.Element] = {}
        self.actions: list[ET.Element] = []
        self.container: dict[str, tuple[str, bool]] = {}
        for schema in root.iter(f"{EDM}Schema"):
            if schema.get("Namespace") != NS:
                continue
            for el in schema:
                tag = el.tag[len(EDM) :]
                if tag == "EntityType":
                    self.entities[el.get("Name")] = el
                elif tag == "ComplexType":
                    self.complexes[el.get("Name")] = el
                elif tag == "EnumType":
                    self.enums[el.get("Name")] = el
                elif tag == "Action" and el.get("IsBound") == "true":
                    self.actions.append(el)
                elif tag == "EntityContainer":
                    for child in el:
                        ctag = child.tag[len(EDM) :]
                        if ctag == "EntitySet":
                            self.container[child.get("Name")] = (local(child.get("EntityType")), True)
                        elif ctag == "Singleton":
                            self.container[child.get("Name")] = (local(child.get("Type")), False)

    def lineage(self, entity: str) -> list[ET.Element]:
        """The entity type and its base types, most derived first."""
        out = []
        name = entity
        while name:
            el = self.entities[name]
            out.append(el)
            base = el.get("BaseType")
            name = local(base) if base else None
        return out

    def navigation(self, entity: str, name: str) -> tuple[str, bool, bool] | None:
        """The target entity type, whether it is a collection, and whether it is contained."""
        for el in self.lineage(entity):
            for nav in el.findall(f"{EDM}NavigationProperty"):
                if nav.get("Name") == name:
                    target, many = unwrap(nav.get("Type"))
                    return local(target), many, nav.get("ContainsTarget") == "true"
        return None

    def bound_action(self, entity: str, name: str, collection: bool) -> ET.Element | None:
        """The action `name` bound to `entity` (or a base type), or to a collection of it."""
        lineage = [el.get("Name") for el in self.lineage(entity)]
        for action in self.actions:
            if action.get("Name") != name:
                continue
            binding = action.find(f"{EDM}Parameter")
            bound, many = unwrap(binding.get("Type"))
            if many == collection and local(bound) in lineage:
                return action
        return None

    def property_names(self, entity: str) -> tuple[list[str], list[str]]:
        structural, navigation = [], []
        for el in reversed(self.lineage(entity)):
            structural += [p.get("Name") for p in el.findall(f"{EDM}Property")]
            navigation += [p.get("Name") for p in el.findall(f"{EDM}NavigationProperty")]
        return structural, navigation


class Writer:
    def __init__(self, model: Model):
        self.model = model
        self.wanted: set[str] = set()

    def type_schema(self, type_name: str, nullable: bool) -> dict:
        inner, many = unwrap(type_name)
        if many:
            return {"type": "array", "items": self.type_schema(inner, nullable)}
        if inner in PRIMITIVES:
            schema = dict(PRIMITIVES[inner])
            if nullable and "type" in schema:
                schema["nullable"] = True
            elif nullable and schema:
                schema = or_null(schema)
            return schema
        name = local(inner)
        if name not in self.model.entities and name not in self.model.complexes and name not in self.model.enums:
            sys.exit(f"extract-print-openapi: type {inner} is not in the metadata")
        self.wanted.add(name)
        return or_null(ref(name)) if nullable else ref(name)

    def properties(self, el: ET.Element) -> dict:
        props = {}
        for p in el.findall(f"{EDM}Property"):
            props[p.get("Name")] = self.type_schema(p.get("Type"), p.get("Nullable", "true") != "false")
        return props

    def component(self, name: str) -> dict:
        m = self.model
        if name in m.enums:
            el = m.enums[name]
            schema = {"title": name, "type": "string", "enum": [x.get("Name") for x in el.findall(f"{EDM}Member")]}
            if el.get("IsFlags") == "true":
                # Flags: a comma-separated list of members (OData's form), checked member by member.
                schema["x-ms-enum-flags"] = {"isFlags": True}
            return schema
        el = m.entities.get(name)
        if el is None:
            el = m.complexes[name]
        body = {"title": name, "type": "object", "properties": self.properties(el)}
        base = el.get("BaseType")
        if base:
            self.wanted.add(local(base))
            return {"allOf": [ref(local(base)), body]}
        return body

    def action_body(self, action: ET.Element) -> dict:
        props, required = {}, []
        for p in action.findall(f"{EDM}Parameter")[1:]:
            nullable = p.get("Nullable", "true") != "false"
            props[p.get("Name")] = self.type_schema(p.get("Type"), nullable)
            if not nullable:
                required.append(p.get("Name"))
        schema = {"type": "object", "properties": props}
        if required:
            schema["required"] = required
        return schema


def query_parameters(model: Model, entity: str, names: list[str]) -> list[dict]:
    structural, navigation = model.property_names(entity)
    out = []
    for name in names:
        if name in ("$top", "$skip"):
            schema = {"type": "integer", "minimum": 0}
        elif name == "$count":
            schema = {"type": "boolean"}
        elif name == "$select":
            schema = {"type": "array", "items": {"type": "string", "enum": sorted(set(structural + navigation))}}
        elif name == "$expand":
            schema = {"type": "array", "items": {"type": "string", "enum": ["*"] + sorted(set(navigation))}}
        elif name == "$orderby":
            schema = {"type": "array", "items": {"type": "string"}}
        else:
            schema = {"type": "string"}
        param = {"name": name, "in": "query", "schema": schema}
        if schema.get("type") == "array":
            # OData lists are comma-separated in one parameter.
            param["style"] = "form"
            param["explode"] = False
        out.append(param)
    return out


def json_body(schema: dict, required: bool = True) -> dict:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def resolve(model: Model, template: str) -> tuple[str, str, bool, list[dict], ET.Element | None]:
    """Walks a path template: the entity it ends at, its kind (collection, item or singleton), whether it is
    contained, its key parameters, and the action it names if it ends in one. Raises NotInMetadata where a
    segment names nothing the metadata defines; a template that misuses what it names stops the script."""
    segments = template.strip("/").split("/")
    first = segments[0]
    if first not in model.container:
        raise NotInMetadata(f"{first} is not in the entity container")
    entity, many = model.container[first]
    kind = "collection" if many else "singleton"
    contained = True
    parameters = []
    action = None
    for seg in segments[1:]:
        if action is not None:
            sys.exit(f"extract-print-openapi: {template}: nothing may follow an action")
        if seg.startswith("{"):
            if kind != "collection" or seg != "{" + entity + "-id}":
                sys.exit(f"extract-print-openapi: {template}: {seg} does not key a {entity} collection")
            parameters.append({"name": seg[1:-1], "in": "path", "required": True, "schema": {"type": "string"}})
            kind = "item"
            continue
        nav = model.navigation(entity, seg) if kind != "collection" else None
        if nav:
            entity, many, contained = nav
            kind = "collection" if many else "item"
            continue
        action = model.bound_action(entity, seg, collection=kind == "collection")
        if action is None:
            raise NotInMetadata(f"{seg} is neither a navigation nor an action of {entity}")
    return entity, kind, contained, parameters, action


def build(model: Model, source: dict) -> dict:
    writer = Writer(model)
    paths = {}
    not_in_source = []
    for template in PATHS + PULL_PRINT_PATHS:
        try:
            entity, kind, contained, parameters, action = resolve(model, template)
        except NotInMetadata as e:
            if template not in PULL_PRINT_PATHS:
                sys.exit(f"extract-print-openapi: {template}: {e}")
            print(f"extract-print-openapi: {template} left out: {e}", file=sys.stderr)
            not_in_source.append(template)
            continue
        item: dict = {}
        if parameters:
            item["parameters"] = parameters
        if action is not None:
            op = {"operationId": f"{entity}.{action.get('Name')}", "responses": {"2XX": {"description": "Success"}}}
            if len(action.findall(f"{EDM}Parameter")) > 1:
                op["requestBody"] = json_body(writer.action_body(action))
            item["post"] = op
        else:
            writer.wanted.add(entity)
            body = json_body(ref(entity))
            ok = {"2XX": {"description": "Success"}}
            if kind == "collection":
                item["get"] = {"operationId": f"{template}.list", "parameters": query_parameters(model, entity, COLLECTION_QUERY), "responses": ok}
                if contained:
                    item["post"] = {"operationId": f"{template}.create", "requestBody": body, "responses": ok}
            else:
                item["get"] = {"operationId": f"{template}.get", "parameters": query_parameters(model, entity, ITEM_QUERY), "responses": ok}
                if contained:
                    item["patch"] = {"operationId": f"{template}.update", "requestBody": body, "responses": ok}
                    if kind == "item":
                        item["delete"] = {"operationId": f"{template}.delete", "responses": ok}
        paths[template] = item

    schemas = {}
    done: set[str] = set()
    while writer.wanted - done:
        for name in sorted(writer.wanted - done):
            schemas[f"{NS}.{name}"] = writer.component(name)
            done.add(name)
    info = {
        "title": "Microsoft Graph v1.0: the print subset pullprintd calls",
        "version": "v1.0",
        "description": "Generated by scripts/graph-schema/extract-print-openapi.py from Microsoft's "
        "published Graph metadata; do not edit by hand. Origin and licence: README.md beside this file.",
        "x-source": source,
    }
    if not_in_source:
        info["x-paths-not-in-source"] = not_in_source
    return {
        "openapi": "3.0.3",
        "info": info,
        "servers": [{"url": "https://graph.microsoft.com/v1.0"}],
        "paths": paths,
        "components": {"schemas": dict(sorted(schemas.items()))},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("metadata", help="clean_v10_metadata/cleanMetadata.xml from microsoftgraph/msgraph-metadata")
    ap.add_argument("--source-commit", help="the msgraph-metadata commit the file comes from (recorded)")
    ap.add_argument("--source-date", help="that commit's date (recorded)")
    ap.add_argument("--out", help="where to write the JSON (default: stdout)")
    a = ap.parse_args()
    with open(a.metadata, "rb") as f:
        raw = f.read()
    source = {
        "repository": "https://github.com/microsoftgraph/msgraph-metadata",
        "path": "clean_v10_metadata/cleanMetadata.xml",
        "sha256": hashlib.sha256(raw).hexdigest(),
        "licence": "MIT",
    }
    if a.source_commit:
        source["commit"] = a.source_commit
    if a.source_date:
        source["commit_date"] = a.source_date
    doc = build(Model(ET.fromstring(raw)), source)
    text = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    if a.out:
        with open(a.out, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
