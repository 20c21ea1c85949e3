// uvgena: UPnP eventing from the command line. One line per subcommand registers it.
#include <CLI/CLI.hpp>

#include "commands.hpp"

int main(int argc, char** argv) {
    CLI::App app{"uvgena: UPnP events (GENA), discovery and a demo device"};
    app.require_subcommand(1);
    uvgena::cli::Action action;
    uvgena::cli::add_subscribe_command(app, action);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int code = app.exit(e);
        return code == 0 ? 0 : 2;
    }
    return action ? action() : 2;
}
