// uvgena: discover UPnP devices, describe them, subscribe to their events, call their actions,
// watch their state, run a demo device.
// One line per subcommand registers it.
//
// Exit codes: 0 ok; 1 runtime failure (one line on stderr); 2 usage error.
#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "uvgena/core/version.hpp"

int main(int argc, char** argv) {
    CLI::App app{"uvgena: UPnP device discovery and GENA eventing on the command line"};
    app.set_version_flag("--version", std::string("uvgena ") + uvgena::version());
    app.require_subcommand(1);
    app.footer("Exit codes: 0 ok, 1 runtime failure, 2 usage error.");
    uvgena::cli::Action action;
    uvgena::cli::add_subscribe_command(app, action);
    uvgena::cli::add_serve_demo_command(app, action);
    uvgena::cli::add_discover_command(app, action);
    uvgena::cli::add_describe_command(app, action);
    uvgena::cli::add_call_command(app, action);
    uvgena::cli::add_watch_command(app, action);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int code = app.exit(e);
        return code == 0 ? 0 : 2;
    }
    return action ? action() : 2;
}
