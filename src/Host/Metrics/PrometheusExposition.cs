using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace MoCo.Host.Metrics;

/// <summary>
/// Collects the measurements of one <see cref="Meter"/>'s instruments and writes them in Prometheus' text format
/// (version 0.0.4): counters as <c>name_total</c>, up-down counters and gauges as their value, histograms as
/// cumulative <c>_bucket</c> series (the instrument's advised boundaries) with <c>_sum</c> and <c>_count</c>.
/// A unit of <c>s</c> adds <c>_seconds</c> to the name, <c>By</c> adds <c>_bytes</c>; tags become labels.
/// </summary>
public sealed class PrometheusExposition : IDisposable
{
    /// <summary>Histogram boundaries when an instrument advises none (Prometheus clients' defaults).</summary>
    public static readonly IReadOnlyList<double> DefaultBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<Instrument, InstrumentState> _instruments = new();

    /// <summary>Starts listening to the instruments of <paramref name="meter"/>, those created so far and later.</summary>
    public PrometheusExposition(Meter meter)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument.Meter, meter))
            {
                var state = new InstrumentState(instrument);
                _instruments[instrument] = state;
                listener.EnableMeasurementEvents(instrument, state);
            }
        };
        _listener.MeasurementsCompleted = (instrument, _) => _instruments.TryRemove(instrument, out InstrumentState? _);
        _listener.SetMeasurementEventCallback<double>((_, value, tags, state) => ((InstrumentState)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<float>((_, value, tags, state) => ((InstrumentState)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<long>((_, value, tags, state) => ((InstrumentState)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<int>((_, value, tags, state) => ((InstrumentState)state!).Record(value, tags));
        _listener.Start();
    }

    /// <summary>The current values of every instrument, as one scrape's text.</summary>
    public string Write()
    {
        _listener.RecordObservableInstruments();
        var text = new StringBuilder();
        foreach (var state in _instruments.Values.OrderBy(s => s.Name, StringComparer.Ordinal))
        {
            state.Write(text);
        }
        return text.ToString();
    }

    /// <inheritdoc />
    public void Dispose() => _listener.Dispose();

    /// <summary>Formats a sample value as Prometheus does (shortest round-trip, +Inf, -Inf, NaN).</summary>
    public static string Format(double value) =>
        double.IsPositiveInfinity(value) ? "+Inf"
        : double.IsNegativeInfinity(value) ? "-Inf"
        : double.IsNaN(value) ? "NaN"
        : value.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>The Prometheus metric name of an instrument: invalid characters become '_', the unit a suffix.</summary>
    public static string MetricName(string instrumentName, string? unit, bool counter)
    {
        var name = new StringBuilder(instrumentName.Length + 16);
        foreach (var c in instrumentName)
        {
            name.Append(char.IsAsciiLetterOrDigit(c) || c is '_' or ':' ? c : '_');
        }
        if (name.Length == 0 || char.IsAsciiDigit(name[0]))
        {
            name.Insert(0, '_');
        }
        var suffix = unit switch
        {
            "s" => "_seconds",
            "By" => "_bytes",
            _ => "",
        };
        var result = name.ToString();
        if (suffix.Length > 0 && !result.EndsWith(suffix, StringComparison.Ordinal))
        {
            result += suffix;
        }
        if (counter && !result.EndsWith("_total", StringComparison.Ordinal))
        {
            result += "_total";
        }
        return result;
    }

    private enum Kind
    {
        CounterSum,     // Counter<T>: deltas summed
        CounterLast,    // ObservableCounter<T>: the callback reports the total
        GaugeSum,       // UpDownCounter<T>: deltas summed
        GaugeLast,      // Gauge<T>, ObservableGauge<T>, ObservableUpDownCounter<T>: the last value
        Histogram,
    }

    /// <summary>One instrument's series (one per tag set), guarded by a lock: measurements arrive from any thread.</summary>
    private sealed class InstrumentState
    {
        private readonly Kind _kind;
        private readonly string _help;
        private readonly double[] _bounds;
        private readonly Dictionary<string, Series> _series = new(StringComparer.Ordinal);

        public InstrumentState(Instrument instrument)
        {
            var generic = instrument.GetType().IsGenericType ? instrument.GetType().GetGenericTypeDefinition() : instrument.GetType();
            _kind = generic == typeof(Counter<>) ? Kind.CounterSum
                : generic == typeof(ObservableCounter<>) ? Kind.CounterLast
                : generic == typeof(UpDownCounter<>) ? Kind.GaugeSum
                : generic == typeof(Histogram<>) ? Kind.Histogram
                : Kind.GaugeLast;
            Name = MetricName(instrument.Name, instrument.Unit, _kind is Kind.CounterSum or Kind.CounterLast);
            _help = (instrument.Description ?? instrument.Name).Replace("\\", "\\\\").Replace("\n", "\\n");
            _bounds = _kind == Kind.Histogram ? Boundaries(instrument) : [];
        }

        public string Name { get; }

        public void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var labels = Labels(tags);
            lock (_series)
            {
                if (!_series.TryGetValue(labels, out var series))
                {
                    series = new Series(_bounds.Length);
                    _series[labels] = series;
                }
                switch (_kind)
                {
                    case Kind.CounterSum or Kind.GaugeSum:
                        series.Value += value;
                        break;
                    case Kind.Histogram:
                        int bucket = 0;
                        while (bucket < _bounds.Length && value > _bounds[bucket])
                        {
                            bucket++;
                        }
                        series.Buckets[bucket]++;
                        series.Count++;
                        series.Value += value;
                        break;
                    default:
                        series.Value = value;
                        break;
                }
            }
        }

        public void Write(StringBuilder text)
        {
            lock (_series)
            {
                if (_series.Count == 0)
                {
                    return;
                }
                var type = _kind switch
                {
                    Kind.CounterSum or Kind.CounterLast => "counter",
                    Kind.Histogram => "histogram",
                    _ => "gauge",
                };
                text.Append("# HELP ").Append(Name).Append(' ').Append(_help).Append('\n');
                text.Append("# TYPE ").Append(Name).Append(' ').Append(type).Append('\n');
                foreach (var (labels, series) in _series.OrderBy(s => s.Key, StringComparer.Ordinal))
                {
                    if (_kind != Kind.Histogram)
                    {
                        Sample(text, Name, labels, series.Value);
                        continue;
                    }
                    long cumulative = 0;
                    for (int i = 0; i <= _bounds.Length; i++)
                    {
                        cumulative += series.Buckets[i];
                        var le = $"le=\"{(i < _bounds.Length ? Format(_bounds[i]) : "+Inf")}\"";
                        Sample(text, Name + "_bucket", labels.Length == 0 ? le : labels + "," + le, cumulative);
                    }
                    Sample(text, Name + "_sum", labels, series.Value);
                    Sample(text, Name + "_count", labels, series.Count);
                }
            }
        }

        private static void Sample(StringBuilder text, string name, string labels, double value)
        {
            text.Append(name);
            if (labels.Length > 0)
            {
                text.Append('{').Append(labels).Append('}');
            }
            text.Append(' ').Append(Format(value)).Append('\n');
        }

        private static string Labels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            if (tags.Length == 0)
            {
                return "";
            }
            var pairs = new List<string>(tags.Length);
            foreach (var (key, value) in tags)
            {
                var name = MetricName(key, null, counter: false);
                var text = Convert.ToString(value, CultureInfo.InvariantCulture) ?? "";
                pairs.Add($"{name}=\"{text.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n")}\"");
            }
            pairs.Sort(StringComparer.Ordinal);
            return string.Join(",", pairs);
        }

        private static double[] Boundaries(Instrument instrument) => instrument switch
        {
            Histogram<double> h when h.Advice?.HistogramBucketBoundaries is { } b => [.. b],
            Histogram<float> h when h.Advice?.HistogramBucketBoundaries is { } b => [.. b.Select(x => (double)x)],
            Histogram<long> h when h.Advice?.HistogramBucketBoundaries is { } b => [.. b.Select(x => (double)x)],
            Histogram<int> h when h.Advice?.HistogramBucketBoundaries is { } b => [.. b.Select(x => (double)x)],
            _ => [.. DefaultBuckets],
        };
    }

    private sealed class Series(int bounds)
    {
        public double Value;
        public long Count;
        public readonly long[] Buckets = new long[bounds + 1];
    }
}
