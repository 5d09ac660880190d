/* kedge-ctl: the operator's CLI for a kedge node, so that a node without a cloud is fully usable.
 *
 * It speaks the $ke/ contract (include/kedge/ke.h) with the bridge identity: device add/rm are
 * the cloud's own membership update (kubeedge-wire.md §2.10) sent on $ke/down/{ref}, and
 * device list/get and status are $ke/ctl/{ref} queries. meta get/list ask kedge-bridge's
 * MetaManager on $ke/meta/{ref}. It owns argument and config parsing, one short MQTT session
 * (libmosquitto, single thread, mosquitto_loop with deadlines) and the printing; the plugin
 * owns every decision about devices, the bridge every decision about metadata. This file is
 * main: the global options, which command, and the dispatch; each command group and each
 * piece of shared machinery has its own ctl_*.c, declared in ctl.h.
 *
 * `import` is the one command without the network: it copies a KubeEdge node's edgecore.db
 * (kubeedge-wire.md §3) into the bridge's meta DB and the plugin's DB, with both services
 * stopped.
 *
 * It never hangs: every wait has a deadline (-t, default 5 s, per step), and an alarm() backs
 * them all up in case a system call blocks (a DNS lookup of -h, say).
 *
 * Exit codes: 0 ok, 1 refused or not found, 2 usage (or a bad config file), 3 cannot connect,
 * authentication refused, not authorised on $ke/, or no answer in time.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mosquitto.h>

#include "kedge/ke.h"
#include "kedge/util.h"
#include "ctl.h"

static void usage(FILE *f)
{
    (void)fprintf(
        f,
        "usage: kedge-ctl [-h HOST] [-p PORT] [-u USER] [-P PASSWORD_FILE] [-c BRIDGE_CONF]\n"
        "                 [-t TIMEOUT_S] COMMAND\n"
        "\n"
        "commands:\n"
        "  device add ID [--twin NAME:TYPE]... [--description TEXT]\n"
        "                      TYPE: string|int|integer|float|boolean\n"
        "  device rm ID\n"
        "  device list\n"
        "  device get ID [--table]   the twin get result as indented JSON (or a table)\n"
        "  status                    outbox, bridge and cloud links, devices, db size\n"
        "  meta get RESOURCE [--source]\n"
        "                      an object of the node's metadata (ns/type/name, e.g.\n"
        "                      default/configmap/cm1) as kedge-bridge's MetaManager answers it:\n"
        "                      from the cloud while connected for configmaps, secrets and the\n"
        "                      other remote-first types, else from its store\n"
        "  meta list TYPE            every stored object of a type (configmap, pod, ...)\n"
        "  outbox list [--limit N]   the head of the plugin's and the bridge's queues to the\n"
        "                      cloud, and the bridge's dead letters (entries the cloud\n"
        "                      refused poison_after times or never answered)\n"
        "  outbox show p:SEQ|b:ID|d:ID   one entry with its message (a bare SEQ: p:SEQ)\n"
        "  outbox retry d:ID         a dead letter back to the bridge queue's tail\n"
        "  outbox drop p:SEQ|b:ID|d:ID   delete one entry (logged and counted)\n"
        "  import EDGECORE_DB [--meta-db PATH] [--plugin-db PATH]\n"
        "                      copy a KubeEdge node's edgecore.db: meta and sub_topics into the\n"
        "                      bridge's meta DB (--meta-db, or meta_db_path in BRIDGE_CONF);\n"
        "                      device, device_attr, device_twin and sub_topics into the plugin's\n"
        "                      DB (--plugin-db, its plugin_opt_db_path). Stop mosquitto and\n"
        "                      kedge-bridge first: both hold their DB while they run\n"
        "\n"
        "options:\n"
        "  -h HOST           broker host (default %s, or broker_host in BRIDGE_CONF)\n"
        "  -p PORT           broker port (default %d, or broker_port)\n"
        "  -u USER           bridge identity (default %s, or broker_username)\n"
        "  -P PASSWORD_FILE  its password, first line (default %s,\n"
        "                    or broker_password_file)\n"
        "  -c BRIDGE_CONF    kedge-bridge's config file (default %s)\n"
        "  -t TIMEOUT_S      seconds to wait for each step (default %d)\n"
        "  --help            this text\n"
        "\n"
        "exit: 0 ok, 1 refused or not found, 2 usage, 3 cannot connect, auth failure or "
        "timeout\n",
        DEFAULT_HOST, DEFAULT_PORT, KE_DEFAULT_BRIDGE_USERNAME, DEFAULT_PASSWORD_FILE, DEFAULT_CONF,
        DEFAULT_TIMEOUT_S);
}

static void on_alarm(int sig)
{
    static const char msg[] = "kedge-ctl: timed out (a system call did not return in time)\n";

    (void)sig;
    (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
    _exit(EXIT_CONNECT);
}

static int parse_args(int argc, char **argv, struct ctl_args *a)
{
    int opt;

    memset(a, 0, sizeof(*a));
    opterr = 0;
    /* '+': stop at the command, whose own options are parsed by the command */
    while ((opt = getopt(argc, argv, "+h:p:u:P:c:t:")) != -1) {
        switch (opt) {
        case 'h':
            a->host = optarg;
            break;
        case 'p':
            if (kedge_parse_long(optarg, 1, 65535, &a->port) < 0) {
                complain("-p '%s' is not a port (1-65535)\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'u':
            if (!*optarg) {
                complain("-u needs a user name\n");
                return EXIT_USAGE;
            }
            a->user = optarg;
            break;
        case 'P':
            a->password_file = optarg;
            break;
        case 'c':
            a->conf = optarg;
            break;
        case 't':
            if (kedge_parse_long(optarg, 1, MAX_TIMEOUT_S, &a->timeout_s) < 0) {
                complain("-t '%s' is not a number of seconds (1-%d)\n", optarg, MAX_TIMEOUT_S);
                return EXIT_USAGE;
            }
            break;
        default:
            if (optopt && strchr("hpuPct", optopt))
                complain("-%c needs a value\n", optopt);
            else
                complain("unknown option '%s'\n", argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    return 0;
}

/* Which command, before anything touches the network: 0 and *cmd set, or EXIT_USAGE. */
enum command {
    CMD_ADD,
    CMD_RM,
    CMD_LIST,
    CMD_GET,
    CMD_STATUS,
    CMD_META_GET,
    CMD_META_LIST,
    CMD_OUTBOX_LIST,
    CMD_OUTBOX_SHOW,
    CMD_OUTBOX_RETRY,
    CMD_OUTBOX_DROP,
    CMD_IMPORT
};

static int pick_command(int argc, char **argv, enum command *cmd, int *first_arg)
{
    if (argc >= 1 && !strcmp(argv[0], "status")) {
        *cmd = CMD_STATUS;
        *first_arg = 1;
        return 0;
    }
    if (argc >= 1 && !strcmp(argv[0], "import")) {
        *cmd = CMD_IMPORT;
        *first_arg = 1;
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[0], "meta") &&
        (!strcmp(argv[1], "get") || !strcmp(argv[1], "list"))) {
        *cmd = !strcmp(argv[1], "get") ? CMD_META_GET : CMD_META_LIST;
        *first_arg = 2;
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[0], "outbox")) {
        static const char *const subs[] = {"list", "show", "retry", "drop"};
        for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
            if (!strcmp(argv[1], subs[i])) {
                *cmd = (enum command)(CMD_OUTBOX_LIST + (int)i);
                *first_arg = 2;
                return 0;
            }
        }
    }
    if (argc >= 2 && !strcmp(argv[0], "device")) {
        static const struct {
            const char *name;
            enum command cmd;
        } sub[] = {{"add", CMD_ADD}, {"rm", CMD_RM}, {"list", CMD_LIST}, {"get", CMD_GET}};
        for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
            if (!strcmp(argv[1], sub[i].name)) {
                *cmd = sub[i].cmd;
                *first_arg = 2;
                return 0;
            }
        }
    }
    if (argc == 0)
        usage(stderr);
    else if (!strcmp(argv[0], "device"))
        complain("device %s%s%s: use device add, rm, list or get (--help)\n",
                 argc > 1 ? "'" : "needs a subcommand", argc > 1 ? argv[1] : "",
                 argc > 1 ? "' is unknown" : "");
    else if (!strcmp(argv[0], "outbox"))
        complain("outbox %s%s%s: use outbox list, show, retry or drop (--help)\n",
                 argc > 1 ? "'" : "needs a subcommand", argc > 1 ? argv[1] : "",
                 argc > 1 ? "' is unknown" : "");
    else if (!strcmp(argv[0], "meta"))
        complain("meta %s%s%s: use meta get or list (--help)\n",
                 argc > 1 ? "'" : "needs a subcommand", argc > 1 ? argv[1] : "",
                 argc > 1 ? "' is unknown" : "");
    else
        complain("unknown command '%s' (--help lists them)\n", argv[0]);
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    struct ctl_args args;
    struct ctl_config cfg = {0};
    struct cmd_ctx c;
    enum command cmd;
    int rc, first;

    for (int i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--help")) {
            usage(stdout);
            return EXIT_OK;
        }
        if (!strcmp(argv[i], "--"))
            break;
    }
    rc = parse_args(argc, argv, &args);
    if (rc)
        return rc;
    rc = pick_command(argc - optind, argv + optind, &cmd, &first);
    if (rc)
        return rc;
    rc = config_build(&cfg, &args);
    if (rc)
        goto out;
    (void)signal(SIGPIPE, SIG_IGN);
    (void)signal(SIGALRM, on_alarm);
    /* every step has its own deadline; this only catches a call that blocks past all of them */
    if (cmd != CMD_IMPORT) /* import has no network to wait for; a big copy takes its time */
        alarm((unsigned)(cfg.timeout_s * MAX_STEPS + 2));

    mosquitto_lib_init();
    memset(&c, 0, sizeof(c));
    c.cfg = &cfg;
    argc -= optind + first;
    argv += optind + first;
    switch (cmd) {
    case CMD_ADD:
        rc = cmd_device_add(&c, argc, argv);
        break;
    case CMD_RM:
        rc = cmd_device_rm(&c, argc, argv);
        break;
    case CMD_LIST:
        rc = cmd_device_list(&c, argc);
        break;
    case CMD_GET:
        rc = cmd_device_get(&c, argc, argv);
        break;
    case CMD_STATUS:
        rc = cmd_status(&c, argc);
        break;
    case CMD_META_GET:
        rc = cmd_meta_get(&c, argc, argv);
        break;
    case CMD_META_LIST:
        rc = cmd_meta_list(&c, argc, argv);
        break;
    case CMD_OUTBOX_LIST:
        rc = cmd_outbox_list(&c, argc, argv);
        break;
    case CMD_OUTBOX_SHOW:
        rc = cmd_outbox_act(&c, "show", argc, argv);
        break;
    case CMD_OUTBOX_RETRY:
        rc = cmd_outbox_act(&c, "retry", argc, argv);
        break;
    case CMD_OUTBOX_DROP:
        rc = cmd_outbox_act(&c, "drop", argc, argv);
        break;
    case CMD_IMPORT:
        rc = cmd_import(&c, argc, argv);
        break;
    }
    session_close(&c.s);
    mosquitto_lib_cleanup();
    if (c.password) {
        memset(c.password, 0, strlen(c.password));
        free(c.password);
    }
out:
    config_cleanup(&cfg);
    if (fflush(stdout) != 0 && rc == 0) {
        complain("cannot write the output: %s\n", strerror(errno));
        rc = EXIT_REFUSED;
    }
    return rc;
}
