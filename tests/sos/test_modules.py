"""sos/modules.py: dumpdomain's modules and dumpmodule -mt's types (text as SOS 10.0.750501 prints it
under lldb 19 for the sample app on .NET 10.0.12), and which modules are searched for a name."""

from __future__ import annotations

from pydbgauto.drivers.lldb.filter_ops import named_types
import pydbgauto as pda
from pydbgauto.sos.modules import modules_to_search, parse_dumpdomain_modules, parse_dumpmodule_types

DUMPDOMAIN = """--------------------------------------
System Domain:      00007f6de50cce00
LowFrequencyHeap:   00007F6DE50CCE20
Stage:              OPEN
Name:               None
--------------------------------------
Domain 1:           000056009878c520
Name:               clrhost
Assembly:           00005600987b6a10 [/usr/share/dotnet/shared/Microsoft.NETCore.App/10.0.12/System.Private.CoreLib.dll]
  Module
  00007f6d65a34000    /usr/share/dotnet/shared/Microsoft.NETCore.App/10.0.12/System.Private.CoreLib.dll

Assembly:           0000560098761770 [/work/main/.build/app-net10/ThrowingApp.dll]
  Module
  00007f6d66b21a30    /work/main/.build/app-net10/ThrowingApp.dll

Assembly:           00005600987c8de0 [/usr/share/dotnet/shared/Microsoft.NETCore.App/10.0.12/System.Runtime.dll]
  Module
  00007f6d66b23b10    /usr/share/dotnet/shared/Microsoft.NETCore.App/10.0.12/System.Runtime.dll
"""  # noqa: E501 (SOS's lines as printed)

DUMPMODULE = """Name: /usr/share/dotnet/shared/Microsoft.NETCore.App/10.0.12/System.Private.CoreLib.dll
Attributes:              PEFile 
Assembly:                000055f14d251a10
TypeDefToMethodTableMap: 00007F921E7A0000
MetaData start address:  00007F921E08FAF0 (3341888 bytes)

Types defined in this module

              MT          TypeDef Name
------------------------------------------------------------------------------
00007f921eacf7c8 0x02000004 Interop+Globalization
00007f921e8805d8 0x02000055 System.Exception
00007f921e88cd28 0x020000b0 System.ArgumentException
00007f921e88e000 0x0200011e System.Collections.Generic.List`1[[System.String, System.Private.CoreLib]]

Types referenced in this module

              MT            TypeRef Name
------------------------------------------------------------------------------
00007f921e8805d8 0x01000002 System.Exception
"""  # noqa: W291 (SOS's trailing blank kept)


def test_dumpdomain_lists_each_module_once_in_order() -> None:
    modules = parse_dumpdomain_modules(DUMPDOMAIN)
    assert [hex(a) for a, _ in modules] == ["0x7f6d65a34000", "0x7f6d66b21a30", "0x7f6d66b23b10"]
    assert modules[0][1].endswith("/System.Private.CoreLib.dll")


def test_dumpmodule_types_by_name() -> None:
    types = parse_dumpmodule_types(DUMPMODULE)
    assert types["System.ArgumentException"] == 0x7F921E88CD28
    assert types["System.Exception"] == 0x7F921E8805D8
    assert types["Interop+Globalization"] == 0x7F921EACF7C8
    assert "System.Collections.Generic.List`1[[System.String, System.Private.CoreLib]]" in types
    assert "Name:" not in " ".join(types)  # header lines are not types


def test_which_modules_are_searched_for_a_name() -> None:
    modules = [(1, "/x/System.Private.CoreLib.dll"), (2, "/app/MyApp.Payments.dll"), (3, "/app/Other.dll")]
    assert modules_to_search(["System.InvalidOperationException"], modules) == [modules[0]]
    assert modules_to_search(["MyApp.Payments.CardDeclinedException"], modules) == [modules[1]]
    assert modules_to_search(["MyApp.PaymentsX.Error"], modules) == []  # a prefix of whole names only
    assert modules_to_search([], modules) == []


def test_named_types_of_a_predicate() -> None:
    spec = (
        pda.exception_type("System.FormatException") | ~pda.exception_type("A.B", derived=True)
    ) & pda.message_matches("x")
    assert named_types(spec.to_spec()) == {"System.FormatException", "A.B"}
    assert named_types(pda.message_matches("x").to_spec()) == set()
