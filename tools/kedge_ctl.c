/* kedge-ctl: the operator's CLI for a kedge node, so that a node without a cloud is fully usable.
 *
 * It speaks the $ke/ contract (include/kedge/ke.h) with the bridge identity: device add/rm are
 * the cloud's own membership update (docs/kubeedge-wire.md §2.10) sent on $ke/down/{ref}, and
 * device list/get and status are $ke/ctl/{ref} queries. meta get/list ask kedge-bridge's
 * MetaManager on $ke/meta/{ref}. It owns argument and config parsing, one short MQTT session
 * (libmosquitto, single thread, mosquitto_loop with deadlines) and the printing; the plugin
 * owns every decision about devices, the bridge every decision about metadata. This file is
 * main: the global options, which command, and the dispatch; each command group and each
 * piece of shared machinery has its own ctl_*.c, declared in ctl.h.
 *
 * `import` is the one command without the network: it copies a KubeEdge node's edgecore.db
 * (docs/kubeedge-wire.md §3) into the bridge's meta DB and the plugin's DB, with both services
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
        "  mapper list [-o json]     the DMI mappers kedge-bridge knows: protocol, socket,\n"
        "                      state, the devices of their protocol, the last report\n"
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

/* Every command: its words, its function, whether it talks to the broker. */
static const struct command {
    const char *group, *name; /* name NULL: a one-word command */
    cmd_fn *run;
    bool network;
} commands[] = {
    {"device", "add", cmd_device_add, true},   {"device", "rm", cmd_device_rm, true},
    {"device", "list", cmd_device_list, true}, {"device", "get", cmd_device_get, true},
    {"status", NULL, cmd_status, true},        {"meta", "get", cmd_meta_get, true},
    {"meta", "list", cmd_meta_list, true},     {"outbox", "list", cmd_outbox_list, true},
    {"outbox", "show", cmd_outbox_show, true}, {"outbox", "retry", cmd_outbox_retry, true},
    {"outbox", "drop", cmd_outbox_drop, true}, {"import", NULL, cmd_import, false},
    {"mapper", "list", cmd_mapper_list, true},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

/* A group without (or with an unknown) subcommand: say which there are, "a, b or c". */
static void wrong_subcommand(int argc, char **argv)
{
    char subs[128] = "";
    size_t i, n = 0, k = 0;

    for (i = 0; i < N_COMMANDS; i++)
        n += !strcmp(commands[i].group, argv[0]);
    for (i = 0; i < N_COMMANDS; i++) {
        if (strcmp(commands[i].group, argv[0]))
            continue;
        k++;
        (void)snprintf(subs + strlen(subs), sizeof(subs) - strlen(subs), "%s%s",
                       k == 1   ? ""
                       : k == n ? " or "
                                : ", ",
                       commands[i].name);
    }
    complain("%s %s%s%s: use %s %s (--help)\n", argv[0], argc > 1 ? "'" : "needs a subcommand",
             argc > 1 ? argv[1] : "", argc > 1 ? "' is unknown" : "", argv[0], subs);
}

/* Which command, before anything touches the network: *cmd and the index of its first
 * argument, or EXIT_USAGE after saying why. */
static int pick_command(int argc, char **argv, const struct command **cmd, int *first_arg)
{
    bool group = false;
    size_t i;

    for (i = 0; argc >= 1 && i < N_COMMANDS; i++) {
        const struct command *c = &commands[i];
        if (strcmp(argv[0], c->group))
            continue;
        group = c->name != NULL;
        if (!c->name || (argc >= 2 && !strcmp(argv[1], c->name))) {
            *cmd = c;
            *first_arg = c->name ? 2 : 1;
            return 0;
        }
    }
    if (argc == 0)
        usage(stderr);
    else if (group)
        wrong_subcommand(argc, argv);
    else
        complain("unknown command '%s' (--help lists them)\n", argv[0]);
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    struct ctl_args args;
    struct ctl_config cfg = {0};
    struct cmd_ctx c;
    const struct command *cmd;
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
    if (cmd->network) /* import has no network to wait for; a big copy takes its time */
        alarm((unsigned)(cfg.timeout_s * MAX_STEPS + 2));

    mosquitto_lib_init();
    memset(&c, 0, sizeof(c));
    c.cfg = &cfg;
    argc -= optind + first;
    argv += optind + first;
    rc = cmd->run(&c, argc, argv);
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
