"""`pcr-conformance`: run kits against a target, validate message files, list requirements, rebuild reports.

This module is the shell: argument parsing, `main`, exit codes and CliError. Each command is a module of
`pcr_conformance.commands` (run, load, proxy, validate, requirements, report, selftest, bundle, verify, profile) with `main(args) -> exit code`,
imported only when that command runs.

Exit codes (docs/concepts.md#verdicts-and-exit-codes): 0 every kit conformant / every file valid; 1 a requirement failed / a file has
errors; 3 incomplete: nothing failed, but a deciding requirement that applies was not shown (skipped, not run,
inconclusive); 2 the run could not be made or judged (bad target or kit file, unreachable target, pytest usage
or collection error, missing summary.json, timeout, every test broken) or a file could not be validated. Over
several kits the worst counts: 2 before 1 before 3 before 0 (`worst_exit_code`).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import os
import signal
import sys
from collections.abc import Sequence

EXIT_OK, EXIT_FAILED, EXIT_ERROR, EXIT_INCOMPLETE = 0, 1, 2, 3
# The exit code of each verdict, and which verdict of several kits wins: error > not-conformant > incomplete.
VERDICT_EXIT_CODES = {"conformant": EXIT_OK, "not-conformant": EXIT_FAILED, "incomplete": EXIT_INCOMPLETE,
                      "error": EXIT_ERROR}
_SEVERITY = (EXIT_OK, EXIT_INCOMPLETE, EXIT_FAILED, EXIT_ERROR)


def worst_exit_code(codes: Sequence[int]) -> int:
    """The exit code of several kits: could not judge (2) > a requirement failed (1) > incomplete (3) > 0."""
    return max(codes, key=lambda c: _SEVERITY.index(c) if c in _SEVERITY else len(_SEVERITY), default=EXIT_OK)
KIT_TIMEOUT_S = 40 * 60  # per kit of the run's pytest session; a hang is killed and reported, never waited out
PROFILES = ("certification", "regression")


class CliError(Exception):
    """A problem the user must fix before anything can run: one line on stderr, exit code 2."""


def err(message: str) -> None:
    print(f"pcr-conformance: {message}", file=sys.stderr)


def version() -> str:
    try:
        return importlib.metadata.version("pcr-conformance")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pcr-conformance",
        description="Conformance kit for the Finnish Positive Credit Register APIs.",
        epilog="Exit codes: 0 conformant / valid, 1 a requirement failed / a message has errors, "
               "3 incomplete (nothing failed, but a deciding requirement was not shown), "
               "2 could not run or judge (configuration, network, TLS, unreadable file).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run kits against a target and write reports",
                         description="Run each kit's conformance tests against a target; reports go to "
                                     "OUTPUT/<kit>/<target>/ (allure-results, junit.xml, summary.json, html).")
    run.add_argument("--target", default="reference",
                     help="target name (targets/<name>.toml) or path to a target file (default: reference, "
                          "the embedded reference register)")
    run.add_argument("--kit", action="append", default=[], metavar="KIT",
                     help="kit to run (kits/<kit>.toml); repeat for several (default: every kit)")
    run.add_argument("--profile", choices=PROFILES, default="certification",
                     help="certification: deterministic fuzzing (default); regression: random, longer")
    run.add_argument("--output", default="reports", metavar="DIR", help="report folder (default: reports)")
    run.add_argument("--no-html", action="store_true", help="do not generate the Allure HTML report")
    run.add_argument("--mask-pii", action="store_true",
                     help="mask personal identity codes in the report's attachments")
    run.add_argument("--timeout", type=float, default=KIT_TIMEOUT_S, metavar="SECONDS",
                     help=f"time limit per kit: the run (one pytest session for all kits) stops after this long "
                          f"times the number of kits (default: {KIT_TIMEOUT_S} s)")
    run.add_argument("--json", metavar="FILE", help="also write the verdict table as JSON to FILE")
    run.add_argument("--contract", choices=("public", "reference"),
                     help="the contract reading that judges: public (only what public material shows decides; "
                          "modelled requirements are informative) or reference (also our model) [the target's "
                          "contract: reference for the embedded register, public otherwise]")
    run.add_argument("--contract-version", metavar="VERSION",
                     help="the contract version the target serves (see `pcr-conformance diff --list`) "
                          "[the target's contract_version, else the current version]")
    run.add_argument("--implementation-profile", metavar="NAME",
                     help="implementation profile (profiles/<name>.toml or a path; '' for none) [the target's]; "
                          "not the Hypothesis --profile")
    run.add_argument("--workers", default="auto", metavar="N",
                     help="test processes of the session (pytest-xdist): auto = 2 for the embedded register on a "
                          "machine with 2 or more cores (each worker starts its own register), 1 for any other "
                          "target; N > 1 against a shared register splits its rate_limit_per_s and its data pool "
                          "between the workers (default: auto)")
    run.add_argument("--recording", metavar="FILE.har",
                     help="judge a stakeholder system's recorded traffic (HAR) with the client kits "
                          "(default kits then: lender-client, lender-client-extract); see `proxy`")
    run.set_defaults(command_module="run")

    val = sub.add_parser("validate", help="check your own message files or recorded answers offline",
                         description="Check JSON request bodies against the operation's schema and every rule "
                                     "that needs no register (--response: register answers; --har: a HAR "
                                     "recording). Prints file, JSON pointer, requirement ID, error code, the "
                                     "problem and how to fix it. Findings only the reference reading makes are "
                                     "warnings under the default public reading and do not change the exit code.")
    val.add_argument("files", nargs="+", metavar="FILE",
                     help="JSON request body files (loans in one file give contract dates for the others), "
                          "answer files with --response, HAR files with --har")
    val.add_argument("--operation", metavar="OP",
                     help="operationId (e.g. AddLoans); default: inferred from the file's members")
    val.add_argument("--json", action="store_true", help="print the results as JSON")
    val.add_argument("--owner-is-kela", action="store_true",
                     help="the sender is Kela, so GuaranteeReceivable loans are allowed (RPT-009)")
    val.add_argument("--today", metavar="YYYY-MM-DD", help="the date to check date rules against (default: today)")
    val.add_argument("--response", action="store_true",
                     help="the files are register answers (JSON bodies) of --operation, judged against its schema")
    val.add_argument("--status", type=int, metavar="N",
                     help="with --response: the answer's HTTP status (default: the operation's 2xx)")
    val.add_argument("--har", action="store_true",
                     help="the files are HAR recordings: every request and answer to an operation is judged")
    val.add_argument("--version", metavar="VERSION",
                     help="judge by this contract version (e.g. the upcoming one: which of your current messages "
                          "it rejects, and why) [the current version]")
    val.add_argument("--contract", choices=("public", "reference"), default="public",
                     help="public (default): what only our model requires is a warning; reference: an error")
    val.set_defaults(command_module="validate")

    req = sub.add_parser("requirements", help="the requirement register and the tests verifying each",
                         description="List the requirements (of a kit) with the tests that verify each one, the "
                                     "seeded faults that prove them and the distinct tests failing per fault.")
    req.add_argument("--kit", metavar="KIT", help="only the requirements this kit selects")
    req.add_argument("--uncovered", action="store_true",
                     help="only must-requirements with no test and no not_tested reason; exit 1 if any")
    req.add_argument("--unproven", action="store_true",
                     help="only testable requirements (no not_tested reason) that no seeded fault breaks; exit 1 if any")
    req.add_argument("--selftest", metavar="FILE",
                     help="the self-test results to show per fault (a 'selftest --json' file; default: "
                          "reports/selftest/selftest.json, which a run of every fault writes)")
    req.add_argument("--json", action="store_true", help="print JSON")
    req.set_defaults(command_module="requirements")

    dif = sub.add_parser("diff", help="what changes between two contract versions, for each side and kit",
                         description="Compare contract versions OLD and NEW operation by operation (members, "
                                     "required, enums, formats, status codes, error codes, requirements); classify "
                                     "each change as breaking or compatible for clients (stakeholders' systems) "
                                     "and for registers; list the kits and tests each change reaches. OLD and NEW "
                                     "are version names (--list) or folders of contract files. Exit 1 when a "
                                     "change is breaking for either side.")
    dif.add_argument("old", metavar="OLD", nargs="?", help="the earlier version (name or folder)")
    dif.add_argument("new", metavar="NEW", nargs="?", help="the later version (name or folder)")
    dif.add_argument("--format", choices=("text", "markdown", "json"), default="text", help="output format (text)")
    dif.add_argument("--no-tests", action="store_true",
                     help="do not collect the suites to list the tests each change reaches (faster)")
    dif.add_argument("--list", action="store_true", help="list the contract versions and exit")
    dif.set_defaults(command_module="diff")

    rep = sub.add_parser("report", help="regenerate the HTML report from existing results",
                         description="Regenerate html/ from allure-results/ of DIR (a reports/<kit>/<target> "
                                     "folder, or reports/ for all of them).")
    rep.add_argument("dir", metavar="DIR")
    rep.set_defaults(command_module="report")

    bun = sub.add_parser("bundle", help="a signed evidence bundle of a report folder",
                         description="Write one zip archive of REPORT_DIR with the kit, specs, target file "
                                     "(secrets removed) and certificates the run used, and an in-toto statement "
                                     "of every file's SHA-256 in a DSSE envelope signed with KEY.")
    bun.add_argument("report_dir", metavar="REPORT_DIR", help="a reports/<kit>/<target>/ folder")
    bun.add_argument("--sign-key", required=True, metavar="KEY",
                     help="PEM private key of the attesting organisation (ECDSA P-256, RSA or Ed25519; "
                          "encrypted: set PCR_SIGN_KEY_PASSWORD)")
    bun.add_argument("--cert", metavar="CERT", help="PEM certificate (chain) of KEY, carried in the bundle")
    bun.add_argument("--attested-by-org", metavar="NAME", help="attesting organisation (default: the certificate's O=)")
    bun.add_argument("--attested-by-person", metavar="NAME", help="the person who attests the run")
    bun.add_argument("--attested-by-role", metavar="ROLE", help="that person's role")
    bun.add_argument("--target", metavar="FILE", help="the run's target file (default: summary.json's target name)")
    bun.add_argument("-o", "--output", metavar="BUNDLE",
                     help="archive to write (default: pcr-evidence-<kit>-<target>-<run id>.zip)")
    bun.set_defaults(command_module="bundle")

    ver = sub.add_parser("verify", help="check an evidence bundle and print the verdict it certifies",
                         description="Check every file of BUNDLE against its signed statement and the signature "
                                     "against the bundled certificate (with --ca: that it chains to CA). "
                                     "Exit 0 valid, 1 invalid (the file or signature named), 2 not a bundle.")
    ver.add_argument("bundle", metavar="BUNDLE")
    ver.add_argument("--ca", metavar="CA", help="PEM file of the CA the signer's certificate must chain to")
    ver.set_defaults(command_module="verify")

    prof = sub.add_parser("profile", help="draft an implementation profile from what a register answers",
                          description="With --learn: run the kit's tests against --target under the public "
                                      "reading and write the values the register showed (error codes of "
                                      "modelled rules, processing literal, extract date format) as a draft "
                                      "implementation profile (TOML), each with the test that saw it. An "
                                      "implementation profile is not the Hypothesis --profile of `run`.")
    prof.add_argument("--learn", action="store_true", help="learn a draft profile from a run")
    prof.add_argument("--target", default="reference", help="target name or file (default: reference)")
    prof.add_argument("--kit", default="register", help="the kit whose tests probe the register (default: register)")
    prof.add_argument("--output", metavar="FILE", help="write the draft here (default: print it)")
    prof.add_argument("--timeout", type=float, default=KIT_TIMEOUT_S, help=argparse.SUPPRESS)
    prof.set_defaults(command_module="profile")

    px = sub.add_parser("proxy", help="a validating proxy your system talks to instead of the register",
                        description="Forward your system's requests to the target (default: the embedded reference "
                                    "register) over mutual TLS, judge each against the client requirements "
                                    "(CLI-...) as it happens, and at the end (Ctrl-C, --duration, --idle-timeout) "
                                    "write the client kits' reports and the traffic as HAR.")
    px.add_argument("--target", default="reference", help="upstream target name or file (default: reference)")
    px.add_argument("--kit", action="append", default=[], metavar="KIT",
                    help="client kit (default: every kit with side = \"client\")")
    px.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    px.add_argument("--port", type=int, default=8443, help="port to listen on; 0 = a free one (default: 8443)")
    px.add_argument("--scenario", metavar="FILE", help="scripted register behaviour (TOML; docs/client-testing.md)")
    px.add_argument("--duration", type=float, default=0, metavar="SECONDS", help="stop after this long")
    px.add_argument("--idle-timeout", type=float, default=0, metavar="SECONDS",
                    help="stop after this long without a request")
    px.add_argument("--server-cert", metavar="PEM", help="the proxy's TLS certificate (default: the embedded register's)")
    px.add_argument("--server-key", metavar="PEM", help="its key")
    px.add_argument("--client-ca", metavar="PEM",
                    help="CA of the client certificates to accept (default: the reference CA)")
    px.add_argument("--contract", choices=("public", "reference"),
                    help="the reading that judges (default: the target's)")
    px.add_argument("--output", default="reports", metavar="DIR", help="report folder (default: reports)")
    px.add_argument("--no-html", action="store_true", help="do not generate the Allure HTML report")
    px.add_argument("--json", metavar="FILE", help="also write the verdict table as JSON to FILE")
    px.add_argument("--timeout", type=float, default=KIT_TIMEOUT_S, help=argparse.SUPPRESS)
    px.set_defaults(command_module="proxy")

    ld = sub.add_parser("load", help="a load run on Locust, judged against the service levels (PRF-...)",
                        description="Run the stakeholders' user classes on Locust against the target (default: the "
                                    "embedded reference register) and judge the service levels (kit load): "
                                    "OUTPUT/load/<target>/ with summary.json, junit.xml, allure-results, html/ and "
                                    "Locust's own HTML and CSV in locust/. Headless by default; distributed like "
                                    "Locust: one --master, any number of --worker processes.")
    ld.add_argument("--target", default=None, help="target name or file (default: reference; a worker: the "
                                                   "master's, unless a remote target file on this machine)")
    ld.add_argument("-u", "--users", type=int, default=10, help="peak number of users (default: 10)")
    ld.add_argument("-r", "--spawn-rate", type=float, default=5.0, help="users started per second (default: 5)")
    ld.add_argument("-t", "--run-time", default="30s", help="stop after this long, e.g. 60s, 2m (default: 30s; "
                                                            "with --web-ui 0 = until stopped in the UI)")
    ld.add_argument("--web-ui", action="store_true", help="Locust's web UI instead of headless")
    ld.add_argument("--web-port", type=int, default=8089, help="port of the web UI (default: 8089)")
    ld.add_argument("--master", action="store_true", help="run as Locust master; workers generate the load")
    ld.add_argument("--expect-workers", type=int, default=1, help="a master starts once this many workers are connected")
    ld.add_argument("--master-bind-host", default="*", help="interface the master listens on (default: all)")
    ld.add_argument("--worker", action="store_true", help="run as Locust worker of --master-host")
    ld.add_argument("--master-host", default="127.0.0.1", help="a worker's master (default: 127.0.0.1)")
    ld.add_argument("--master-port", type=int, default=5557, help="the master's port (default: 5557)")
    ld.add_argument("--html", metavar="FILE", help="Locust's HTML report (default: OUTPUT/load/<target>/locust/locust.html)")
    ld.add_argument("--csv", metavar="PREFIX", help="Locust's CSV statistics (default: OUTPUT/load/<target>/locust/locust_*.csv)")
    ld.add_argument("--contract", choices=("public", "reference"), help="the reading that judges (default: the target's)")
    ld.add_argument("--output", default="reports", metavar="DIR", help="report folder (default: reports)")
    ld.add_argument("--no-html", action="store_true", help="do not generate the Allure HTML report")
    ld.add_argument("--json", metavar="FILE", help="also write the verdict table as JSON to FILE")
    ld.add_argument("--timeout", type=float, default=KIT_TIMEOUT_S, help=argparse.SUPPRESS)
    ld.set_defaults(command_module="load")

    st = sub.add_parser("selftest", help="seeded-fault self-test of the suites",
                        description="Run the suites against the reference register with each fault switch; "
                                    "every fault must be detected and the control run must be clean.")
    st.add_argument("--fault", action="append", default=[], metavar="NAME", help="only this fault (repeatable)")
    st.add_argument("--json", metavar="FILE", help="write the detection matrix as JSON to FILE")
    st.add_argument("--full", action="store_true", help="also run the whole kit for every fault")
    st.add_argument("--contract", choices=("public", "reference"), default=None,
                    help="judge under this reading (default: the target's, reference for the embedded register); "
                         "public also drops the implementation profile, as for a register that is not ours")
    st.add_argument("--target", default="reference", help=argparse.SUPPRESS)
    st.add_argument("--kit", default="register", help=argparse.SUPPRESS)
    st.set_defaults(command_module="selftest")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Started in the background of a script, a process inherits SIGINT ignored, and Python then installs no
    # KeyboardInterrupt for it: `run` would neither stop on SIGINT nor let its pytest stop gracefully on the SIGINT
    # console.kill_group sends (the child inherits the ignoring; its junit.xml was lost to the SIGKILL after the
    # grace). A handled signal is reset to the default at exec, so the pytest a command starts gets Ctrl-C back too.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from pcr_conformance import resources

    resources.share_hypothesis_storage()
    try:
        command = importlib.import_module(f"pcr_conformance.commands.{args.command_module}")
        return int(command.main(args))
    except CliError as e:
        err(str(e))
        return EXIT_ERROR
    except KeyboardInterrupt:
        err("interrupted")
        return 130
    except BrokenPipeError:  # `pcr-conformance requirements | head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED


if __name__ == "__main__":
    # `python -m pcr_conformance.cli`: call main() of the module the commands import, not of this __main__
    # copy, so the CliError a command raises is the class main() catches.
    from pcr_conformance.cli import main as _main

    sys.exit(_main())
