/** PrefLoop: the human-feedback loop in one service. Packages are capabilities; docs/ARCHITECTURE.md maps them. */
package org.prefloop;
