#!/usr/bin/python3
"""A GUPnP 1.6 control point (PyGObject) calling the SOAP actions of `uvgena serve-demo`, whose
actions are the Publisher's action handlers (issue 22, part 2): it discovers the demo's
RenderingControl and AVTransport on IFACE, then calls SetVolume and GetVolume (the volume read
back), SetVolume out of range, SetVolume not a number and an unknown action (GUPnP's
GLib.Error must carry the UPnP errorCode: 601, 402 and 401), SetAVTransportURI with DIDL-Lite metadata holding XML specials, Play
and GetTransportInfo.

Prints one line per check ("ok ..." or "FAIL ..."), then "CHECKS passed of total"; exits 0
when all passed.

Usage: gupnp_actions.py IFACE SECONDS
"""
import sys

import gi

gi.require_version("GUPnP", "1.6")
gi.require_version("GSSDP", "1.6")
from gi.repository import GLib, GObject, GSSDP, GUPnP  # noqa: E402

RCS = "urn:schemas-upnp-org:service:RenderingControl:1"
AVT = "urn:schemas-upnp-org:service:AVTransport:1"
DIDL = ('<DIDL-Lite xmlns="urn:schemas-upnp-org:metadata-1-0/DIDL-Lite/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><item id="1">'
        '<dc:title>Tom &amp; Jerry &lt;live&gt; "1"</dc:title></item></DIDL-Lite>')


def string_value(text):
    value = GObject.Value(GObject.TYPE_STRING)
    value.set_string(text)
    return value


def call(proxy, name, arguments, outputs=()):
    """Calls `name`; returns the out values (strings) or raises GLib.Error."""
    action = GUPnP.ServiceProxyAction.new_from_list(
        name, [n for n, _ in arguments], [string_value(v) for _, v in arguments])
    action = proxy.call_action(action, None)
    ok, values = action.get_result_list(list(outputs), [GObject.TYPE_STRING] * len(outputs))
    if not ok:
        raise RuntimeError(f"{name}: no result")
    return values


def main():
    iface, seconds = sys.argv[1], float(sys.argv[2])
    context = GUPnP.Context.new_full(iface, None, 0, GSSDP.UDAVersion.VERSION_1_0)
    loop = GLib.MainLoop()
    found = {}
    points = []
    for service_type in (RCS, AVT):
        point = GUPnP.ControlPoint.new(context, service_type)

        def on_available(_point, proxy, service_type=service_type):
            if service_type not in found:
                found[service_type] = proxy
            if len(found) == 2:
                loop.quit()

        point.connect("service-proxy-available", on_available)
        point.set_active(True)
        points.append(point)
    GLib.timeout_add(int(seconds * 1000), loop.quit)
    loop.run()
    if len(found) != 2:
        print(f"FAIL discovery: found {sorted(found)}", flush=True)
        return 1

    results = []

    def check(label, condition, detail=""):
        results.append(bool(condition))
        print(f"{'ok' if condition else 'FAIL'} {label}{': ' + detail if detail else ''}",
              flush=True)

    def fault_code(proxy, name, arguments):
        try:
            call(proxy, name, arguments)
        except GLib.Error as e:
            return e.code, e.message
        return 0, ""

    rcs, avt = found[RCS], found[AVT]
    master = [("InstanceID", "0"), ("Channel", "Master")]
    call(rcs, "SetVolume", master + [("DesiredVolume", "33")])
    volume = call(rcs, "GetVolume", master, ["CurrentVolume"])
    check("SetVolume 33 then GetVolume", volume == ["33"], str(volume))
    code, message = fault_code(rcs, "SetVolume", master + [("DesiredVolume", "400")])
    check("SetVolume 400 is a 601 fault", code == 601, f"{code} {message}")
    code, message = fault_code(rcs, "SetVolume", master + [("DesiredVolume", "loud")])
    check("SetVolume loud is a 402 fault", code == 402, f"{code} {message}")
    code, message = fault_code(rcs, "Explode", [("InstanceID", "0")])
    check("an unknown action is a 401 fault", code == 401, f"{code} {message}")
    call(avt, "SetAVTransportURI", [("InstanceID", "0"), ("CurrentURI", "http://x/a&b.flac"),
                                    ("CurrentURIMetaData", DIDL)])
    call(avt, "Play", [("InstanceID", "0"), ("Speed", "1")])
    info = call(avt, "GetTransportInfo", [("InstanceID", "0")],
                ["CurrentTransportState", "CurrentTransportStatus", "CurrentSpeed"])
    check("SetAVTransportURI (DIDL-Lite), Play, GetTransportInfo",
          info == ["PLAYING", "OK", "1"], str(info))
    passed = sum(results)
    print(f"CHECKS {passed} passed of {len(results)}", flush=True)
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
