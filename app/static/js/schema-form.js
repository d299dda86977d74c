// A form generated from a method's params JSON schema: defaults filled, bounds enforced.

import { el } from "./dom.js";

/** The non-null branch of an `anyOf: [X, {type: null}]` schema, and whether null is allowed. */
function unwrap(prop) {
  if (!prop.anyOf) return { schema: prop, nullable: false };
  const branches = prop.anyOf.filter((b) => b.type !== "null");
  return { schema: { ...branches[0], ...prop, anyOf: undefined }, nullable: branches.length < prop.anyOf.length };
}

function bounds(schema) {
  const low = schema.minimum ?? (schema.exclusiveMinimum !== undefined ? schema.exclusiveMinimum : undefined);
  const high = schema.maximum ?? (schema.exclusiveMaximum !== undefined ? schema.exclusiveMaximum : undefined);
  const parts = [];
  if (low !== undefined) parts.push(`${schema.exclusiveMinimum !== undefined ? ">" : "≥"} ${low}`);
  if (high !== undefined) parts.push(`${schema.exclusiveMaximum !== undefined ? "<" : "≤"} ${high}`);
  return parts.join(", ");
}

function control(name, schema, nullable) {
  const def = schema.default;
  if (schema.const !== undefined) {
    return el("select", { name, disabled: true }, [el("option", { value: schema.const }, schema.const)]);
  }
  if (schema.enum) {
    const select = el("select", { name }, schema.enum.map((v) => el("option", { value: v }, String(v))));
    select.value = def ?? schema.enum[0];
    return select;
  }
  if (schema.type === "boolean") {
    const box = el("input", { type: "checkbox", name });
    box.checked = Boolean(def);
    return box;
  }
  if (schema.type === "integer" || schema.type === "number") {
    const input = el("input", { type: "number", name, step: schema.type === "integer" ? "1" : "any",
                                inputmode: schema.type === "integer" ? "numeric" : "decimal" });
    if (schema.minimum !== undefined) input.min = schema.minimum;
    if (schema.maximum !== undefined) input.max = schema.maximum;
    if (def !== undefined && def !== null) input.value = def;
    if (nullable) input.placeholder = "auto";
    else input.required = true;
    return input;
  }
  if (schema.type === "object" || schema.type === "array") {  // e.g. lrp's rules by layer type: typed as JSON
    const example = schema.type === "array" ? "[...]" : '{"first": "flat", "conv": "gamma"}';
    const input = el("input", { type: "text", name, placeholder: nullable ? `default, or JSON: ${example}` : example,
                                "data-json": "true" });
    if (def !== undefined && def !== null) input.value = JSON.stringify(def);
    return input;
  }
  const input = el("input", { type: "text", name, placeholder: nullable ? "default" : "" });
  if (schema.maxLength) input.maxLength = schema.maxLength;
  if (def !== undefined && def !== null) input.value = def;
  return input;
}

/** Check a number against exclusive bounds, which HTML inputs cannot express. */
function exclusiveError(schema, value) {
  if (schema.exclusiveMinimum !== undefined && !(value > schema.exclusiveMinimum)) return `must be > ${schema.exclusiveMinimum}`;
  if (schema.exclusiveMaximum !== undefined && !(value < schema.exclusiveMaximum)) return `must be < ${schema.exclusiveMaximum}`;
  return null;
}

export function buildParamsForm(container, schema) {
  container.replaceChildren();
  const fields = [];
  for (const [name, prop] of Object.entries(schema.properties || {})) {
    const { schema: s, nullable } = unwrap(prop);
    const input = control(name, s, nullable);
    const hint = [s.description || prop.description || "", bounds(s)].filter(Boolean).join(" · ");
    const row = el("label", { class: "field" + (s.type === "boolean" ? " field-check" : ""), "data-param": name }, [
      el("span", { class: "field-name" }, prop.title || name),
      input,
      hint ? el("span", { class: "field-hint" }, hint) : null,
    ]);
    container.append(row);
    fields.push({ name, schema: s, nullable, input });
  }
  if (!fields.length) container.append(el("p", { class: "muted" }, "This method has no parameters."));

  return {
    /** `{params, errors}`: the values that differ from the defaults, or what is wrong. */
    read() {
      const params = {};
      const errors = [];
      for (const f of fields) {
        const { name, schema: s, input } = f;
        if (input.disabled) continue;
        if (!input.checkValidity()) {
          errors.push(`${name}: ${input.validationMessage}`);
          continue;
        }
        let value;
        if (s.type === "boolean") value = input.checked;
        else if (s.type === "integer" || s.type === "number") {
          if (input.value === "") {
            if (f.nullable) continue;
            errors.push(`${name}: a number is needed`);
            continue;
          }
          value = Number(input.value);
          const bad = exclusiveError(s, value);
          if (bad) {
            errors.push(`${name}: ${bad}`);
            continue;
          }
        } else if (input.value === "" && f.nullable) continue;
        else if (input.dataset.json) {
          try {
            value = JSON.parse(input.value);
          } catch {
            errors.push(`${name}: must be JSON, for example ${input.placeholder.replace(/^default, or JSON: /, "")}`);
            continue;
          }
        } else value = input.value;
        if (value !== s.default) params[name] = value;
      }
      return { params, errors };
    },
  };
}
