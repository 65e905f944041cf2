/** PrefLoop: the human-feedback loop in one service. Packages are capabilities; see DESIGN.md. */
package org.prefloop;
