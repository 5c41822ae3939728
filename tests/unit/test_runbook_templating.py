"""Templates see inputs, env, steps and run — nothing else — and fail loudly."""

from __future__ import annotations

import pytest

from erpops.runbook.templating import TemplateError, evaluate_condition, references, render_string, render_value

CTX = {"inputs": {"n": 3, "tenants": ["a", "b"], "name": "nord"}, "env": {"name": "lab"},
       "steps": {"dump": {"outputs": {"id": "x1"}}}, "run": {"id": "r1"}}


def test_single_expression_keeps_its_type():
    assert render_string("{{ inputs.n + 1 }}", CTX) == 4
    assert render_string("{{ inputs.tenants }}", CTX) == ["a", "b"]
    assert render_string("db-{{ inputs.name }}-{{ steps.dump.outputs.id }}", CTX) == "db-nord-x1"


def test_undefined_is_an_error_not_an_empty_string():
    with pytest.raises(TemplateError, match="'missing' is not defined in"):
        render_string("{{ inputs.missing }}", CTX)
    with pytest.raises(TemplateError, match="a template sees only inputs, env, steps, run"):
        render_string("{{ lipsum() }}", CTX)


@pytest.mark.parametrize("template", [
    "{{ inputs.__class__ }}",
    "{{ inputs.name.__class__.__mro__ }}",
    "{{ range(3) | list }}",
    "{{ cycler }}",
    "{{ self }}",
])
def test_nothing_outside_the_context_is_reachable(template):
    with pytest.raises(TemplateError):
        render_string(template, CTX)


def test_sandbox_forbids_mutation():
    with pytest.raises(TemplateError):
        render_string("{{ inputs.tenants.append('c') }}", CTX)
    assert CTX["inputs"]["tenants"] == ["a", "b"]


def test_render_value_recurses():
    assert render_value({"a": ["{{ inputs.n }}", {"b": "{{ env.name }}"}]}, CTX) == {"a": [3, {"b": "lab"}]}


def test_conditions():
    assert evaluate_condition(None, CTX) is True
    assert evaluate_condition(False, CTX) is False
    assert evaluate_condition("inputs.n > 2", CTX) is True
    assert evaluate_condition("{{ inputs.n > 5 }}", CTX) is False
    assert evaluate_condition("{{ 'no' }}", CTX) is False


def test_references_for_validation():
    refs = references("{{ inputs.n }} {{ steps.dump.outputs['id'] }} {% for t in inputs.tenants %}{{ t }}{% endfor %}")
    assert ("inputs", "n") in refs
    assert ("steps", "dump", "outputs", "id") in refs
    assert ("inputs", "tenants") in refs
    assert not any(r[0] == "t" for r in refs)
