#!/usr/bin/python3
"""A GUPnP 1.6 control point (PyGObject) that subscribes COUNT times to every RenderingControl
it discovers on IFACE, one GUPnP.ControlPoint (so one ServiceProxy and one subscription) each,
and counts what reaches the application's notify callbacks.

The initial event of the demo renderer's RenderingControl is the full LastChange document
(it names PresetNameList); the periodic changes name only Volume. A control point whose initial
event was thrown away (GUPnP 1.6 drops a NOTIFY that arrives before it stored the SID, then
takes SEQ 1 as a gap and resubscribes) shows either no full document, or more than one (the
resubscription's).

Prints one line per subscription, "PROXY i full=N changes=N lost=N", then "INITIAL k of COUNT";
exits 0 if every subscription got exactly one full document and lost none.

Usage: gupnp_subscriber.py IFACE COUNT SECONDS
"""
import sys
import time

import gi

gi.require_version("GUPnP", "1.6")
gi.require_version("GSSDP", "1.6")
from gi.repository import GLib, GObject, GSSDP, GUPnP  # noqa: E402

SERVICE = "urn:schemas-upnp-org:service:RenderingControl:1"


def main():
    iface, count, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    context = GUPnP.Context.new_full(iface, None, 0, GSSDP.UDAVersion.VERSION_1_0)
    loop = GLib.MainLoop()
    proxies = [None] * count
    full = [0] * count
    changes = [0] * count
    lost = [0] * count
    points = []
    state = {"all_subscribed_at": None}

    def make(i):
        point = GUPnP.ControlPoint.new(context, SERVICE)

        def on_notify(_proxy, _variable, value, _data):
            if "PresetNameList" in str(value):
                full[i] += 1
            else:
                changes[i] += 1

        def on_lost(_proxy, error):
            lost[i] += 1
            print(f"LOST {i}: {error}", flush=True)

        def on_available(_point, proxy):
            if proxies[i] is not None:
                return
            proxies[i] = proxy
            proxy.add_notify("LastChange", GObject.TYPE_STRING, on_notify, None)
            proxy.connect("subscription-lost", on_lost)
            proxy.set_subscribed(True)
            if all(p is not None for p in proxies) and state["all_subscribed_at"] is None:
                state["all_subscribed_at"] = time.monotonic()

        point.connect("service-proxy-available", on_available)
        point.set_active(True)
        points.append(point)

    for i in range(count):
        make(i)

    started = time.monotonic()

    def check():
        now = time.monotonic()
        since = state["all_subscribed_at"]
        if (since is not None and now - since >= seconds) or now - started > seconds + 20:
            loop.quit()
            return False
        return True

    GLib.timeout_add(100, check)
    loop.run()
    for i in range(count):
        print(f"PROXY {i} found={proxies[i] is not None} full={full[i]} changes={changes[i]} "
              f"lost={lost[i]}")
    good = sum(1 for i in range(count) if full[i] == 1 and lost[i] == 0)
    print(f"INITIAL {sum(1 for f in full if f >= 1)} of {count}; exactly one full document "
          f"and no loss: {good} of {count}", flush=True)
    for proxy in proxies:
        if proxy is not None:
            proxy.set_subscribed(False)
    # Let the UNSUBSCRIBEs leave.
    ctx = GLib.MainContext.default()
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        ctx.iteration(False)
        time.sleep(0.01)
    return 0 if good == count else 1


if __name__ == "__main__":
    sys.exit(main())
