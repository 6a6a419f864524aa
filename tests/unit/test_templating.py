"""Label templates: Prometheus spelling, missing labels render empty, and the sandbox sees only the labels."""

from __future__ import annotations

import pytest

from tocsin.policy.templating import TemplateError, check_template, render_template

LABELS = {"service": "checkout", "environment": "prod"}


def test_prometheus_labels_render() -> None:
    assert render_template("Service {{ $labels.service }} down", LABELS) == "Service checkout down"
    assert render_template("{{ $labels.service }}/{{ $labels.environment }}", LABELS) == "checkout/prod"


def test_jinja_spelling_and_item_access_render_too() -> None:
    assert render_template("{{ labels.service }}", LABELS) == "checkout"
    assert render_template("{{ $labels['environment'] }}", LABELS) == "prod"


def test_missing_label_renders_empty() -> None:
    assert render_template("{{ $labels.region }}", LABELS) == ""
    assert render_template("db-{{ $labels.database }}-primary", {}) == "db--primary"


def test_text_without_a_template_is_returned_as_is() -> None:
    assert render_template("Database performance degradation detected", LABELS) == (
        "Database performance degradation detected"
    )


def test_result_is_stripped() -> None:
    assert render_template("  {{ $labels.service }}  ", LABELS) == "checkout"


def test_labels_are_data_not_templates() -> None:
    # A label value that looks like a template is printed, never evaluated.
    assert render_template("{{ $labels.service }}", {"service": "{{ range(10) }}"}) == "{{ range(10) }}"


@pytest.mark.parametrize("name", ["range", "lipsum", "cycler", "joiner", "namespace", "dict"])
def test_default_globals_are_gone(name: str) -> None:
    with pytest.raises(TemplateError, match=rf"template .* failed: '{name}' is undefined"):
        render_template(f"{{{{ {name}() }}}}", LABELS)
    # Merely naming one renders nothing.
    assert render_template(f"{{{{ {name} }}}}", LABELS) == ""


@pytest.mark.parametrize("name", ["config", "request", "os", "__builtins__", "self._TemplateReference__context"])
def test_nothing_else_is_in_scope(name: str) -> None:
    assert render_template(f"{{{{ {name} }}}}", LABELS) == ""


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ labels.__class__.__mro__[1].__subclasses__() }}",
        "{{ self.__init__.__globals__ }}",
        "{{ $labels.__init__.__globals__ }}",
    ],
)
def test_reaching_for_python_internals_fails(template: str) -> None:
    with pytest.raises(TemplateError, match=r"access to attribute '__\w+__' of '\w+' object is unsafe"):
        render_template(template, LABELS)


@pytest.mark.parametrize("template", ["{{ labels.__class__ }}", "{{ 'a' | attr('__class__') }}"])
def test_dunder_attributes_render_as_nothing(template: str) -> None:
    assert render_template(template, LABELS) == ""


@pytest.mark.parametrize(
    "template",
    ["{{ labels.pop('service') }}", "{{ labels.update({'service': 'x'}) }}", "{{ labels.clear() }}"],
)
def test_labels_cannot_be_modified(template: str) -> None:
    labels = dict(LABELS)
    with pytest.raises(TemplateError, match=r"access to attribute '\w+' of 'dict' object is unsafe"):
        render_template(template, labels)
    assert labels == LABELS


def test_nested_access_on_a_missing_label_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match=r"^template '\{\{ \$labels\.region\.name \}\}' failed: "):
        render_template("{{ $labels.region.name }}", LABELS)


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{{ $labels.service ", "unexpected end of template, expected 'end of print statement'."),
        ("{% if %}x{% endif %}", "Expected an expression, got 'end of statement block'"),
        ("{{ $labelsX }}", "unexpected char '$' at 3"),
    ],
)
def test_syntax_errors_are_template_errors(template: str, problem: str) -> None:
    with pytest.raises(TemplateError) as rendering:
        render_template(template, LABELS)
    assert str(rendering.value) == f"invalid template {template!r}: {problem}"
    with pytest.raises(TemplateError) as checking:
        check_template(template)
    assert str(checking.value) == f"invalid template {template!r}: {problem} (line 1)"


def test_check_template_accepts_good_templates() -> None:
    check_template("Service {{ $labels.service }} experiencing outage")
    check_template("deployment/{{ $labels.service }}")
    check_template("no template at all")


def test_template_error_is_a_value_error() -> None:
    # Pydantic turns ValueErrors raised in validators into field errors: that is how the loader reports them.
    assert issubclass(TemplateError, ValueError)
