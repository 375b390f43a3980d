// The demo: send two photos as multipart, draw each returned box over its photo, show the verdict and
// each face's quality with the prompt a kiosk would give.
"use strict";

const form = document.getElementById("compare");
const result = document.getElementById("result");
const apiKey = document.getElementById("apiKey");
apiKey.value = localStorage.getItem("facecompare.apiKey") || "";

function preview(input, image) {
  input.addEventListener("change", () => {
    clearBoxes();
    if (input.files[0]) image.src = URL.createObjectURL(input.files[0]);
  });
}
preview(document.getElementById("originFace"), document.getElementById("originImage"));
preview(document.getElementById("targetFace"), document.getElementById("targetImage"));

function clearBoxes() {
  document.querySelectorAll(".box").forEach((box) => box.remove());
  document.querySelectorAll(".quality").forEach((quality) => { quality.textContent = ""; });
}

// Boxes are ratios of the upright image, so percentages of the shown image place them at any size.
function drawBox(frameId, face, kind) {
  if (!face || !face.isAvailable || !face.boundingBox) return;
  const b = face.boundingBox;
  const box = document.createElement("div");
  box.className = "box " + kind;
  box.style.left = b.Left * 100 + "%";
  box.style.top = b.Top * 100 + "%";
  box.style.width = b.Width * 100 + "%";
  box.style.height = b.Height * 100 + "%";
  document.getElementById(frameId).appendChild(box);
}

// Example prompts a kiosk could give (docs/API.md, `quality`); a deployment tunes its own limits.
const PROMPTS = [
  [(q) => q.brightness < 25, "too dark"],
  [(q) => q.brightness > 85, "too bright"],
  [(q) => q.sharpness < 25, "blurry: hold still"],
  [(q) => Math.abs(q.pose.yaw) > 30 || Math.abs(q.pose.pitch) > 25, "look at the camera"],
  [(q) => Math.abs(q.pose.roll) > 25, "hold your head straight"],
  [(q) => q.sizePx < 60, "come closer"],
];

function showQuality(elementId, face) {
  const element = document.getElementById(elementId);
  const q = face && face.quality;
  if (!q) {
    element.textContent = "";
    return;
  }
  const prompts = PROMPTS.filter(([fails]) => fails(q)).map(([, prompt]) => prompt);
  element.textContent = `brightness ${q.brightness}, sharpness ${q.sharpness}, `
    + `yaw ${q.pose.yaw}°, pitch ${q.pose.pitch}°, roll ${q.pose.roll}°, ${q.sizePx} px wide`
    + (prompts.length ? ` — ${prompts.join(", ")}` : " — good");
  element.className = "quality" + (prompts.length ? " poor" : "");
}

function show(text, kind) {
  result.textContent = text;
  result.className = kind;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearBoxes();
  localStorage.setItem("facecompare.apiKey", apiKey.value);
  const body = new FormData();
  body.append("originFace", document.getElementById("originFace").files[0]);
  body.append("targetFace", document.getElementById("targetFace").files[0]);
  const threshold = document.getElementById("threshold").value;
  if (threshold !== "") body.append("threshold", threshold);
  if (document.getElementById("livenessCheck").checked) body.append("livenessCheck", "true");
  show("Comparing…", "");
  let answer;
  try {
    const response = await fetch("/modules/compare", { method: "POST", headers: { "x-api-key": apiKey.value }, body });
    answer = await response.json();
  } catch (error) {
    show("Request failed: " + error, "error");
    return;
  }
  if (answer.errorCode) {
    show(`Error ${answer.errorCode}: ${answer.message}`, "error");
    return;
  }
  const { face, faceMatch } = answer.result;
  drawBox("originFrame", face, "origin");
  drawBox("targetFrame", faceMatch, "target");
  showQuality("originQuality", face);
  showQuality("targetQuality", faceMatch);
  if (!face.isAvailable) show("No face in the origin photo", "nomatch");
  else if (!faceMatch.isAvailable) show("No face in the target photo", "nomatch");
  else show(`${faceMatch.isMatch ? "Match" : "No match"}: similarity ${faceMatch.similarity.toFixed(2)} `
            + `(threshold ${faceMatch.threshold})` + livenessText(faceMatch.liveness),
            faceMatch.isMatch ? "match" : "nomatch");
});

// Present only when the liveness was checked (the checkbox, or a workspace that requires it).
function livenessText(liveness) {
  if (liveness === undefined) return "";
  if (liveness === null) return "; liveness: no face to check";
  return `; target ${liveness.isLive ? "live" : "NOT live"}: liveness ${liveness.score.toFixed(2)} `
         + `(threshold ${liveness.threshold})`;
}
