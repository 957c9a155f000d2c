// The VM's display in the browser: noVNC's RFB client over the vnc subresource.
import { useEffect, useRef, useState } from "preact/hooks";
import RFB from "@novnc/novnc";
import { streamURL } from "./api.js";
import { PROTOCOLS } from "./console.jsx";

export function VNCDisplay({ namespace, name }) {
  const host = useRef(null);
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
    return () => { try { rfb.disconnect(); } catch { /* already closed */ } };
  }, [namespace, name, attempt]);
  return (
    <div class="pane">
      <p class="pane-status" role="status" aria-live="polite">
        VNC: {state}{" "}
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
