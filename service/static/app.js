// The demo: send two photos as multipart, draw each returned box over its photo, show the verdict.
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
