// One Node process per kit's report (issue 12): the single-file Allure 3 report, as
// `allure awesome --single-file --config C --cwd D --group-by G`, and the quality gate of the same config over
// the same results, as `allure quality-gate`, from one reading of allure-results/ instead of two processes that
// each read every result file. Run by pcr_conformance.report (allure_kit), which falls back to the two `allure`
// commands when this cannot start.
//   node allure_kit.mjs NODE_MODULES RESULTS OUTPUT CONFIG CWD GROUP_BY
// Prints "PCR-QUALITY-GATE <json list of the failed rules>" as its last line.
import { realpath } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [modules, results, output, configPath, cwdArg, groupBy] = process.argv.slice(2);
const load = (pkg) => import(pathToFileURL(join(modules, pkg, "dist", "index.js")).href);
const { AllureReport, readConfig } = await load(join("@allurereport", "core"));
const { default: AwesomePlugin } = await load(join("@allurereport", "plugin-awesome"));

const cwd = await realpath(cwdArg);
const config = await readConfig(cwd, configPath, { output });
const options = { singleFile: true, groupBy: groupBy.split(",") };
config.plugins = [{ id: "awesome", enabled: true, options, plugin: new AwesomePlugin(options) }];
const report = new AllureReport(config);
await report.start();
await report.readDirectory(results);
await report.done();
let failed = [];
if (report.hasQualityGate) {
  const trs = await report.store.allTestResults({ includeRetries: false });
  const { results: gate } = await report.validate({ trs });
  failed = gate.filter(({ success }) => !success).map(({ rule }) => rule);
}
console.log(`PCR-QUALITY-GATE ${JSON.stringify(failed)}`);
