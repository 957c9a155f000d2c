// The VM's display in the browser: noVNC's RFB client over the vnc subresource.
import { useEffect, useRef, useState } from "preact/hooks";
import RFB from "@novnc/novnc";
import { streamURL } from "./api.js";
import { LEAVE_KEY, PROTOCOLS, isLeaveKey } from "./console.jsx";

export function VNCDisplay({ namespace, name }) {
  const host = useRef(null);
  const status = useRef(null);
  const rfbRef = useRef(null);
  const [state, setState] = useState("Connecting…");
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    // preserveSession=false: like upstream, this connection takes over from any other VNC viewer
    const rfb = new RFB(host.current, streamURL(namespace, name, "vnc", "preserveSession=false"),
      { wsProtocols: PROTOCOLS, shared: true });
    rfb.scaleViewport = true;
    rfb.focusOnClick = true;
    rfb.addEventListener("connect", () => setState("Connected"));
    rfb.addEventListener("disconnect", (e) => setState(e.detail.clean ? "Disconnected" :
      "Disconnected (the VM may have stopped, another viewer took over, or you may not open its display)"));
    rfb.addEventListener("securityfailure", (e) => setState(`Refused: ${e.detail.reason || "security failure"}`));
    rfbRef.current = rfb;
    const leave = (e) => {
      if (!isLeaveKey(e)) return;
      e.preventDefault();
      e.stopPropagation();
      rfb.blur();
      status.current.focus();
    };
    const container = host.current;
    container.addEventListener("keydown", leave, true); // before noVNC sends the key to the guest
    return () => {
      container.removeEventListener("keydown", leave, true);
      try { rfb.disconnect(); } catch { /* already closed */ }
    };
  }, [namespace, name, attempt]);
  return (
    <div class="pane">
      <p class="pane-status" role="status" aria-live="polite" tabIndex={-1} ref={status}>
        VNC: {state} <span class="muted">({LEAVE_KEY} leaves the display)</span>{" "}
        {state !== "Connected" && state !== "Connecting…" && (
          <button type="button" onClick={() => { setState("Connecting…"); setAttempt(attempt + 1); }}>Reconnect</button>
        )}
        {state === "Connected" && (
          <button type="button" onClick={() => rfbRef.current && rfbRef.current.sendCtrlAltDel()}>Send Ctrl+Alt+Del</button>
        )}
      </p>
      <div class="screen" ref={host} data-testid="vnc-screen" aria-label={`Display of ${name}; click to type`} />
    </div>
  );
}
