"""Hostile sros2 policies (issue 16): include bombs, expensive xpointers, comments inside names,
oversized or deep documents, names with a trailing newline.  Each is refused with a one-line
PolicyError/InputError, or imported with bounded work."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cobot_security.errors import InputError, PolicyError
from cobot_security.policy import xinclude
from cobot_security.policy.sros2_import import import_sros2_policy, import_sros2_policy_bytes
from cobot_security.policy.xml import MAX_XML_BYTES, MAX_XML_DEPTH

XI = 'xmlns:xi="http://www.w3.org/2001/XInclude"'


def _policy(profile_body: str, path: str = "/e", profile: str = 'node="n"') -> str:
    return (f'<policy version="0.2.0" {XI}><enclaves><enclave path="{path}"><profiles>'
            f"<profile {profile}>{profile_body}</profile></profiles></enclave></enclaves></policy>")


def _error(data: str | bytes, source: str = "p.policy.xml") -> InputError:
    raw = data.encode() if isinstance(data, str) else data
    with pytest.raises(InputError) as caught:
        import_sros2_policy_bytes(raw, source)
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == 2
    return caught.value


@pytest.mark.parametrize(("inner", "kind"), [
    ("joint<!--x-->_states", "a comment"),
    ("<!--x-->joint_states", "a comment"),
    ("joint_states<!--x-->", "a comment"),
    ("joint<?pi x?>_states", "a processing instruction"),
    ("joint<b>x</b>_states", "an element <b>"),
])
def test_anything_but_text_inside_a_name_is_refused(inner: str, kind: str) -> None:
    error = _error(_policy(f'<topics publish="ALLOW"><topic>{inner}</topic></topics>'))
    assert isinstance(error, PolicyError)
    assert error.field == "enclave[@path='/e']/profiles/profile[1]/topics/topic[1]"
    assert error.expected.startswith("a name as plain text")
    assert error.got == f"{kind} inside <topic>"


def test_cdata_and_surrounding_whitespace_are_plain_text() -> None:
    policy = import_sros2_policy_bytes(
        _policy('<topics publish="ALLOW"><topic>\n  joint_<![CDATA[states]]>\n</topic></topics>').encode(),
        "p.policy.xml")
    assert policy.enclaves[0].nodes[0].publish == ("joint_states",)


@pytest.mark.parametrize(("xml", "field"), [
    (_policy("", path="/cell&#10;"), "enclave[@path='/cell\n']/@path"),
    (_policy("", profile='node="n&#10;"'), "enclave[@path='/e']/profiles/profile[1]/@node"),
    (_policy("", profile='node="n" ns="/cell&#10;"'), "enclave[@path='/e']/profiles/profile[1]/@ns"),
    (_policy('<topics publish="ALLOW"><topic>a&#10;b</topic></topics>'),
     "enclave[@path='/e']/profiles/profile[1]/topics/topic[1]"),
])
def test_names_with_a_newline_are_refused(xml: str, field: str) -> None:
    error = _error(xml)
    assert error.field == field
    assert "\\n" in str(error)


def _files(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path / "top.policy.xml"


def _fan_out(tmp_path: Path, levels: int, width: int, xpointer: str = "xpointer(/nothing)") -> Path:
    """The issue's include bomb: each level includes the next ``width`` times; nothing is selected."""
    include = '<xi:include href="{}" xpointer="' + xpointer + '"/>'
    files = {f"l{level}.xml": f"<profile {XI}>" + include.format(f"l{level + 1}.xml") * width + "</profile>"
             for level in range(levels - 1)}
    files[f"l{levels - 1}.xml"] = "<profile/>"
    files["top.policy.xml"] = _policy(include.format("l0.xml") * width)
    return _files(tmp_path, files)


def test_include_bomb_parses_each_file_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []
    real_parse = xinclude._parse

    def counting_parse(data: bytes, source: str):  # type: ignore[no-untyped-def]
        parsed.append(Path(source).name)
        return real_parse(data, source)

    monkeypatch.setattr(xinclude, "_parse", counting_parse)
    top = _fan_out(tmp_path, levels=4, width=5)  # 5 + 25 + 125 + 625 includes if each were re-parsed
    policy = import_sros2_policy(top)
    assert sorted(parsed) == ["l0.xml", "l1.xml", "l2.xml", "l3.xml"]  # each included file once
    assert policy.enclaves[0].nodes[0].publish == ()


def test_every_include_counts_even_when_it_selects_nothing(tmp_path: Path) -> None:
    top = _files(tmp_path, {
        "empty.xml": "<profile/>",
        "top.policy.xml": _policy('<xi:include href="empty.xml" xpointer="xpointer(/nothing)"/>' * 257),
    })
    with pytest.raises(PolicyError, match=r"top\.policy\.xml:1: xi:include: expected at most 256 xi:include "
                                          r"elements in all, got more"):
        import_sros2_policy(top)


def test_xpointer_work_is_capped(tmp_path: Path) -> None:
    many = "<profile>" + "<x/>" * 200_000 + "</profile>"  # 800 KB, under the size limit
    top = _files(tmp_path, {
        "many.xml": many,
        "top.policy.xml": _policy('<xi:include href="many.xml" xpointer="xpointer(/profile/y)"/>' * 10),
    })
    with pytest.raises(PolicyError, match=r"xi:include/@xpointer: expected at most 2000000 element visits by "
                                          r"xpointers in all, got more"):
        import_sros2_policy(top)


@pytest.mark.parametrize("xpointer", [
    "xpointer(//*[count(preceding::*)<0])",   # the 26-second xpointer
    "xpointer(/policy/enclaves/*|//*)",
    "xpointer(//profile//topic)",
    "xpointer(/profile/following::*)",
    "xpointer(id('x'))",
    "xpointer(../x)",
    "xpointer(/profile/*[last()])",
    "xpointer(" + "/a" * 17 + ")",
    "element(/1/2)",
    "xpointer(/profile/*) xpointer(//*)",
])
def test_xpointers_outside_the_safe_subset_are_refused(tmp_path: Path, xpointer: str) -> None:
    escaped = xpointer.replace("<", "&lt;").replace("'", "&apos;").replace("\n", "&#10;")
    top = _files(tmp_path, {
        "common.xml": "<profile><topics publish='ALLOW'><topic>a</topic></topics></profile>",
        "top.policy.xml": _policy(f"<xi:include href='common.xml' xpointer='{escaped}'/>"),
    })
    with pytest.raises(PolicyError, match=r"xi:include/@xpointer: expected xpointer\(<path>\) with a path of "
                                          r"child steps") as caught:
        import_sros2_policy(top)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("xpointer", [
    "xpointer(/profile/*)", "xpointer(//topics)", "xpointer(/profile/topics[@publish='ALLOW'])",
    'xpointer(/profile/topics[@publish = "ALLOW"][1])', "xpointer(/profile/topics[@publish])",
])
def test_xpointers_inside_the_subset_work(tmp_path: Path, xpointer: str) -> None:
    top = _files(tmp_path, {
        "common.xml": "<profile><topics publish='ALLOW'><topic>a</topic></topics></profile>",
        "top.policy.xml": _policy(f"<xi:include href='common.xml' xpointer=\"{xpointer.replace(chr(34), '&quot;')}\"/>"),  # noqa: E501 (test data kept on one line)
    })
    assert import_sros2_policy(top).enclaves[0].nodes[0].publish == ("a",)


def test_an_included_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.xml")
    top = _files(tmp_path, {"top.policy.xml": _policy('<xi:include href="pipe.xml"/>')})
    with pytest.raises(PolicyError, match="pipe.xml: expected a regular included XML file"):
        import_sros2_policy(top)


def test_size_and_depth_limits(tmp_path: Path) -> None:
    big = _error(b"<policy>" + b" " * MAX_XML_BYTES + b"</policy>")
    assert big.expected == f"an XML document of at most {MAX_XML_BYTES} bytes"
    deep = _error(_policy("<a>" * MAX_XML_DEPTH + "</a>" * MAX_XML_DEPTH))
    assert deep.expected == f"XML elements nested at most {MAX_XML_DEPTH} deep"
    libxml_deep = _error("<a>" * 300 + "</a>" * 300)  # past libxml2's own limit of 256
    assert libxml_deep.expected == f"XML elements nested at most {MAX_XML_DEPTH} deep"
    path = tmp_path / "big.policy.xml"
    path.write_bytes(b"<policy>" + b" " * MAX_XML_BYTES + b"</policy>")
    with pytest.raises(PolicyError, match=f"expected a sros2 policy file of at most {MAX_XML_BYTES} bytes"):
        import_sros2_policy(path)


def test_many_denies_against_many_wildcards_are_bounded() -> None:
    allow = "".join(f"<topic>a{i}*</topic>" for i in range(1100))
    deny = "".join(f"<topic>x{i}</topic>" for i in range(1100))
    error = _error(_policy(f'<topics publish="ALLOW">{allow}</topics><topics publish="DENY">{deny}</topics>'))
    assert error.field == "enclave[@path='/e']/topics"
    assert error.expected == "at most 1000000 DENY x ALLOW-wildcard comparisons in all"


def test_many_concrete_denies_and_allows_import_in_linear_time() -> None:
    allow = "".join(f"<topic>a{i}</topic>" for i in range(5000))
    deny = "".join(f"<topic>x{i}</topic>" for i in range(5000))
    policy = import_sros2_policy_bytes(
        _policy(f'<topics publish="ALLOW">{allow}{allow}</topics><topics publish="DENY">{deny}</topics>').encode(),
        "p.policy.xml")
    assert len(policy.enclaves[0].nodes[0].publish) == 5000  # repeats dropped, order kept
