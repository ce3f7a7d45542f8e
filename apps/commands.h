/* The subcommands of the nincl command, each in apps/cmd-<name>.c. */
#ifndef NCL_COMMANDS_H
#define NCL_COMMANDS_H

int cmd_devices(int argc, char **argv);
int cmd_shapes(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_export(int argc, char **argv);

#endif
