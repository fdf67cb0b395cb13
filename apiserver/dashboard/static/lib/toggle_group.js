// A row of pressable buttons where one is on: status chips that filter a list, a time
// range picker. The pressed state is aria-pressed (read aloud), not only a colour.

import {h} from "./dom.js";
import {formatNumber} from "./format.js";

/**
 * toggleGroup({label, options, value, onChange, className}) -> element (role=group).
 * options: [{value, label, count?, tone?}]; count adds a number badge, tone ("ok", "bad",
 * ...) a coloured dot. value: the pressed option's value. onChange(value) runs when
 * another option is pressed (pressing the pressed one does nothing).
 */
export function toggleGroup({label, options, value, onChange, className = ""}) {
  return h(
    "div",
    {class: `toggle-group ${className}`.trim(), role: "group", "aria-label": label},
    options.map((option) => {
      const pressed = String(option.value) === String(value);
      return h(
        "button",
        {
          type: "button",
          class: `toggle${option.tone ? ` toggle-${option.tone}` : ""}`,
          "aria-pressed": String(pressed),
          dataset: {value: option.value},
          onClick: () => {
            if (!pressed) onChange(option.value);
          },
        },
        h("span", {class: "toggle-label"}, option.label),
        option.count === undefined || option.count === null
          ? null
          : h("span", {class: "toggle-count"}, formatNumber(option.count)),
      );
    }),
  );
}
