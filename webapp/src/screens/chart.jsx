// Small hand-written SVG charts. Each is one role="img" with a summarising aria-label (the SVG's
// parts are decoration to a screen reader) and a <details> table holding the same numbers, so
// the figures are readable without seeing the picture. Sizes come from the viewBox: the SVG is
// 100% wide and scales; colours come from the CSS variables via classes in chart.css.
import "./chart.css";

const W = 360;
const PAD = { top: 12, right: 12, bottom: 40, left: 44 };

const percent = (value) => (value === null || value === undefined ? "–" : `${Math.round(value * 100)}%`);
export const formatPercent = percent;

/** Round ticks for 0..max: about four steps of 1, 2 or 5 × 10^n. */
function ticks(max, integer = false) {
  if (!(max > 0)) return [0, 1];
  const rough = max / 4;
  const power = 10 ** Math.floor(Math.log10(rough));
  // Counts step by whole numbers: a scale of 0, 0.5, 1 people reads wrong.
  const step = Math.max(integer ? 1 : 0, [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough));
  const out = [];
  for (let value = 0; value <= max + step * 0.001; value += step) out.push(Number(value.toFixed(10)));
  if (out[out.length - 1] < max) out.push(Number((out[out.length - 1] + step).toFixed(10)));
  return out;
}

function DataTable({ caption, columns, rows }) {
  return (
    <details class="chart-data">
      <summary>Show the data as a table</summary>
      <div class="chart-table-wrap">
        <table>
          <caption class="visually-hidden">{caption}</caption>
          <thead>
            <tr>
              {columns.map((column) => (
                <th scope="col" key={column}>
                  {column}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((row, index) => (
              <tr key={index}>
                {row.map((cell, i) => (i === 0 ? <th scope="row" key={i}>{cell}</th> : <td key={i}>{cell}</td>))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </details>
  );
}

/**
 * A line over evenly spaced points (e.g. the 100-point retention curve).
 * values: numbers; yMax: the top of the scale (1 for shares); formatY / formatX(index) for
 * axis and table text (formatRow(index) for the table rows, when it differs); highlights: [{from, to}] index ranges drawn as shaded bands (drop-offs).
 */
export function LineChart({ values, label, title, xLabel, yLabel, formatX = String, formatRow, formatY = percent, yMax, highlights = [], columns, height = 200 }) {
  const top = yMax ?? Math.max(...values, 0);
  const scale = ticks(top);
  const maxY = scale[scale.length - 1] || 1;
  const innerW = W - PAD.left - PAD.right;
  const innerH = height - PAD.top - PAD.bottom;
  const x = (i) => PAD.left + (values.length > 1 ? (i / (values.length - 1)) * innerW : innerW / 2);
  const y = (v) => PAD.top + innerH - (Math.max(0, v) / maxY) * innerH;
  const path = values.map((v, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join("");
  const area = values.length ? `${path}L${x(values.length - 1).toFixed(1)},${y(0)}L${x(0).toFixed(1)},${y(0)}Z` : "";
  const xTicks = values.length > 1 ? [0, Math.round((values.length - 1) / 2), values.length - 1] : [0];
  return (
    <figure class="chart">
      {title && <figcaption class="chart-title">{title}</figcaption>}
      <svg viewBox={`0 0 ${W} ${height}`} width="100%" role="img" aria-label={label} preserveAspectRatio="xMidYMid meet">
        {highlights.map((band, i) => (
          <rect key={`h${i}`} class="chart-highlight" x={x(band.from) - 1} y={PAD.top} width={Math.max(2, x(band.to) - x(band.from) + 2)} height={innerH} />
        ))}
        {scale.map((tick) => (
          <g key={`y${tick}`}>
            <line class="chart-grid" x1={PAD.left} x2={W - PAD.right} y1={y(tick)} y2={y(tick)} />
            <text class="chart-tick" x={PAD.left - 6} y={y(tick) + 4} text-anchor="end">
              {formatY(tick)}
            </text>
          </g>
        ))}
        {xTicks.map((i) => (
          <text key={`x${i}`} class="chart-tick" x={x(i)} y={PAD.top + innerH + 16} text-anchor={i === 0 ? "start" : i === values.length - 1 ? "end" : "middle"}>
            {formatX(i)}
          </text>
        ))}
        <path class="chart-area" d={area} />
        <path class="chart-line" d={path} />
        <line class="chart-axis" x1={PAD.left} x2={W - PAD.right} y1={y(0)} y2={y(0)} />
        {xLabel && (
          <text class="chart-axis-label" x={PAD.left + innerW / 2} y={height - 4} text-anchor="middle">
            {xLabel}
          </text>
        )}
        {yLabel && (
          <text class="chart-axis-label" x={-(PAD.top + innerH / 2)} y={12} transform="rotate(-90)" text-anchor="middle">
            {yLabel}
          </text>
        )}
      </svg>
      <DataTable caption={label} columns={columns || [xLabel || "Point", yLabel || "Value"]} rows={values.map((v, i) => [(formatRow || formatX)(i), formatY(v)])} />
    </figure>
  );
}

/**
 * Bars for categories, one bar per series in each (grouped).
 * categories: [{label, values: [number per series]}]; series: [{name}] (2 at most read well);
 * horizontal: long category names (reasons) read better as rows; integer: counts (whole ticks).
 */
export function BarChart({ categories, series, label, title, xLabel, yLabel, formatValue = String, yMax, horizontal = false, integer = false }) {
  const max = yMax ?? Math.max(0, ...categories.flatMap((c) => c.values.filter((v) => v !== null && v !== undefined)));
  const scale = ticks(max, integer);
  const top = scale[scale.length - 1] || 1;
  const many = series.length;
  const legend =
    many > 1 ? (
      <ul class="chart-legend" aria-hidden="true">
        {series.map((s, i) => (
          <li key={s.name}>
            <span class={`chart-swatch chart-series-${i}`} /> {s.name}
          </li>
        ))}
      </ul>
    ) : null;
  const columns = [xLabel || "Category", ...series.map((s) => s.name)];
  const rows = categories.map((c) => [c.label, ...c.values.map((v) => (v === null || v === undefined ? "–" : formatValue(v)))]);

  if (horizontal) {
    const labelW = 118;
    const rowH = 14 * many + 12;
    const height = PAD.top + categories.length * rowH + 30;
    const innerW = W - labelW - PAD.right - 8;
    const x = (v) => labelW + (Math.max(0, v) / top) * innerW;
    return (
      <figure class="chart">
        {title && <figcaption class="chart-title">{title}</figcaption>}
        {legend}
        <svg viewBox={`0 0 ${W} ${height}`} width="100%" role="img" aria-label={label}>
          {scale.map((tick) => (
            <g key={`t${tick}`}>
              <line class="chart-grid" x1={x(tick)} x2={x(tick)} y1={PAD.top - 4} y2={height - 26} />
              <text class="chart-tick" x={x(tick)} y={height - 12} text-anchor="middle">
                {formatValue(tick)}
              </text>
            </g>
          ))}
          {categories.map((c, ci) => {
            const y0 = PAD.top + ci * rowH;
            return (
              <g key={c.label}>
                <text class="chart-tick chart-category" x={labelW - 8} y={y0 + (rowH - 6) / 2 + 4} text-anchor="end">
                  {c.label}
                </text>
                {c.values.map((v, si) => (
                  <rect key={si} class={`chart-bar chart-series-${si}`} x={labelW} y={y0 + si * 14} width={Math.max(v > 0 ? 2 : 0, x(v || 0) - labelW)} height={12} rx={2} />
                ))}
              </g>
            );
          })}
          <line class="chart-axis" x1={labelW} x2={labelW} y1={PAD.top - 4} y2={height - 26} />
        </svg>
        <DataTable caption={label} columns={columns} rows={rows} />
      </figure>
    );
  }

  const height = 200;
  const innerW = W - PAD.left - PAD.right;
  const innerH = height - PAD.top - PAD.bottom;
  const slot = innerW / Math.max(1, categories.length);
  const barW = Math.min(28, (slot * 0.7) / many);
  const y = (v) => PAD.top + innerH - (Math.max(0, v) / top) * innerH;
  // Label every category when they fit, else every n-th (the table has them all).
  const every = Math.max(1, Math.ceil(categories.length / 6));
  return (
    <figure class="chart">
      {title && <figcaption class="chart-title">{title}</figcaption>}
      {legend}
      <svg viewBox={`0 0 ${W} ${height}`} width="100%" role="img" aria-label={label}>
        {scale.map((tick) => (
          <g key={`t${tick}`}>
            <line class="chart-grid" x1={PAD.left} x2={W - PAD.right} y1={y(tick)} y2={y(tick)} />
            <text class="chart-tick" x={PAD.left - 6} y={y(tick) + 4} text-anchor="end">
              {formatValue(tick)}
            </text>
          </g>
        ))}
        {categories.map((c, ci) => {
          const center = PAD.left + slot * ci + slot / 2;
          const start = center - (barW * many) / 2;
          return (
            <g key={c.label}>
              {c.values.map((v, si) =>
                v === null || v === undefined ? null : (
                  <rect key={si} class={`chart-bar chart-series-${si}`} x={start + si * barW} y={y(v)} width={barW - 1} height={Math.max(v > 0 ? 1 : 0, y(0) - y(v))} rx={2} />
                ),
              )}
              {ci % every === 0 && (
                <text class="chart-tick" x={center} y={PAD.top + innerH + 16} text-anchor="middle">
                  {c.short || c.label}
                </text>
              )}
            </g>
          );
        })}
        <line class="chart-axis" x1={PAD.left} x2={W - PAD.right} y1={y(0)} y2={y(0)} />
        {xLabel && (
          <text class="chart-axis-label" x={PAD.left + innerW / 2} y={height - 4} text-anchor="middle">
            {xLabel}
          </text>
        )}
        {yLabel && (
          <text class="chart-axis-label" x={-(PAD.top + innerH / 2)} y={12} transform="rotate(-90)" text-anchor="middle">
            {yLabel}
          </text>
        )}
      </svg>
      <DataTable caption={label} columns={columns} rows={rows} />
    </figure>
  );
}

/** A headline figure: a big number with its name under it. */
export function Figure({ value, name, hint }) {
  return (
    <div class="figure">
      <span class="figure-value">{value}</span>
      <span class="figure-name">{name}</span>
      {hint && <span class="figure-hint">{hint}</span>}
    </div>
  );
}
