// k8s-validate.mjs OBJECTS.json: validates each object with the JSON schemas of the npm
// packages kubernetes-models and @kubernetes-models/prometheus-operator. k8s-schema.sh copies
// it next to their node_modules so the (ESM) packages resolve.
import fs from "node:fs";

const objs = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
let failed = 0;
for (const o of objs) {
  const [group, version] = o.apiVersion.includes("/") ? o.apiVersion.split("/") : ["", o.apiVersion];
  const pkg = group === "monitoring.coreos.com"
    ? `@kubernetes-models/prometheus-operator/${group}/${version}`
    : `kubernetes-models/${group ? group + "/" : ""}${version}`;
  let Model;
  try {
    Model = (await import(pkg))[o.kind];
  } catch (e) {
    Model = undefined;
  }
  const name = `${o.kind}/${o.metadata && o.metadata.name}`;
  if (!Model) {
    console.log(`  no schema   ${o.apiVersion} ${name} (checked by check_k8s.py)`);
    continue;
  }
  // kustomize wraps base64 Secret data at 70 columns; the API server's decoder skips the
  // newlines, the schema's "byte" format does not: unwrap before validating.
  if (o.kind === "Secret" && o.data) {
    for (const k of Object.keys(o.data)) o.data[k] = String(o.data[k]).replace(/\s+/g, "");
  }
  try {
    new Model(o).validate();
    console.log(`  valid       ${o.apiVersion} ${name}`);
  } catch (e) {
    failed++;
    console.log(`  INVALID     ${o.apiVersion} ${name}: ${e.message}`);
    if (e.errors) console.log(JSON.stringify(e.errors, null, 1).slice(0, 3000));
  }
}
process.exit(failed ? 1 : 0);
