/* rm -r, for the temporary folders nincl and its tests make. */
#ifndef NCL_REMOVE_TREE_H
#define NCL_REMOVE_TREE_H

/* Removes path and, when it is a folder, everything below it (links are removed, not followed).
 * Best effort: what cannot be removed stays. */
void remove_tree(const char *path);

#endif
