using System.Diagnostics.Metrics;

namespace MoCo.Host.Metrics;

/// <summary>
/// The training metrics of one process, as <see cref="System.Diagnostics.Metrics"/> instruments of the meter
/// <see cref="MeterName"/>; <see cref="MetricsEndpoint"/> serves them (OpenTelemetry's Prometheus exporter). Each <c>Record</c> method is cheap and may be
/// called from any thread, e.g. from the actor that prints progress. Prometheus names (what a scrape shows):
/// <c>moco_steps_total</c>, <c>moco_step_rate</c>, <c>moco_images_per_second</c>, <c>moco_loss</c>, <c>moco_lr</c>, <c>moco_epoch</c>, <c>moco_global_step</c>,
/// <c>moco_knn_top1_percent</c>, <c>moco_generation</c>, <c>moco_world_size</c>, <c>moco_queue_age_steps</c>,
/// <c>moco_allreduce_duration_seconds</c> and <c>moco_checkpoint_duration_seconds</c> (histograms).
/// </summary>
public sealed class MocoMetrics : IDisposable
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "MoCo.Actors";

    /// <summary>Histogram buckets of one all-reduce, seconds: from a small CPU bucket to a slow network.</summary>
    public static readonly IReadOnlyList<double> AllReduceBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    /// <summary>Histogram buckets of one checkpoint write, seconds: a small CPU model to ResNet-50 on network storage.</summary>
    public static readonly IReadOnlyList<double> CheckpointBuckets = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250];

    private readonly Meter _meter;

    /// <summary>The meter (one per instance, so that two instances never mix).</summary>
    public Meter Meter => _meter;
    private readonly Counter<long> _steps;
    private readonly Gauge<double> _stepRate;
    private readonly Gauge<double> _imagesPerSecond;
    private readonly Gauge<double> _loss;
    private readonly Gauge<double> _lr;
    private readonly Gauge<long> _epoch;
    private readonly Gauge<long> _globalStep;
    private readonly Gauge<double> _knnTop1;
    private readonly Gauge<long> _generation;
    private readonly Gauge<long> _worldSize;
    private readonly Gauge<long> _queueAge;
    private readonly Histogram<double> _allReduce;
    private readonly Histogram<double> _checkpoint;

    /// <summary>Creates the meter and its instruments; dispose to remove them.</summary>
    /// <param name="meterName">The meter's name: <see cref="MeterName"/> in a process of ours; tests that run side by
    /// side in one process give each instance its own, since an exporter listens to meters by name.</param>
    public MocoMetrics(string meterName = MeterName)
    {
        _meter = new Meter(meterName, typeof(MocoMetrics).Assembly.GetName().Version?.ToString());
        _steps = _meter.CreateCounter<long>("moco.steps", description: "Optimizer steps completed by the run (global steps, counted once per process)");
        _stepRate = _meter.CreateGauge<double>("moco.step_rate", description: "Optimizer steps per second over the last reporting window");
        _imagesPerSecond = _meter.CreateGauge<double>("moco.images_per_second", description: "Training images per second over the last reporting window, global batch");
        _loss = _meter.CreateGauge<double>("moco.loss", description: "InfoNCE loss of the last step");
        _lr = _meter.CreateGauge<double>("moco.lr", description: "Learning rate of the last step");
        _epoch = _meter.CreateGauge<long>("moco.epoch", description: "Epoch of the last step");
        _globalStep = _meter.CreateGauge<long>("moco.global_step", description: "Global step of the last step");
        _knnTop1 = _meter.CreateGauge<double>("moco.knn_top1_percent", description: "Weighted kNN monitor top-1 accuracy of the last evaluation, percent");
        _generation = _meter.CreateGauge<long>("moco.generation", description: "Membership generation of the run (a new one on every join or leave)");
        _worldSize = _meter.CreateGauge<long>("moco.world_size", description: "Workers in the current generation");
        _queueAge = _meter.CreateGauge<long>("moco.queue_age_steps", description: "Age of the oldest key in the negative queue, in optimizer steps");
        _allReduce = _meter.CreateHistogram("moco.allreduce.duration", "s", "Seconds a step waited after backward for its all-reduce (rank 0; what overlap did not hide)",
            tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = AllReduceBuckets });
        _checkpoint = _meter.CreateHistogram("moco.checkpoint.duration", "s", "Seconds to write, fsync and rename one checkpoint",
            tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = CheckpointBuckets });
    }

    /// <summary>A completed optimizer step (or the last of a reported chunk of <paramref name="steps"/>).</summary>
    /// <param name="globalStep">The global step just completed.</param>
    /// <param name="epoch">Its epoch.</param>
    /// <param name="loss">Its loss.</param>
    /// <param name="learningRate">Its learning rate.</param>
    /// <param name="stepsPerSecond">Steps per second over the window that ends with this step.</param>
    /// <param name="imagesPerSecond">Images per second over the same window (steps per second times the global batch).</param>
    /// <param name="steps">Steps this call accounts for (1 per step; n when progress arrives in chunks).</param>
    public void RecordStep(long globalStep, int epoch, double loss, double learningRate, double stepsPerSecond, double imagesPerSecond, int steps = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(steps);
        _steps.Add(steps);
        _globalStep.Record(globalStep);
        _epoch.Record(epoch);
        _loss.Record(loss);
        _lr.Record(learningRate);
        _stepRate.Record(stepsPerSecond);
        _imagesPerSecond.Record(imagesPerSecond);
    }

    /// <summary>A kNN monitor evaluation (before training or after an epoch).</summary>
    public void RecordKnn(double top1Percent) => _knnTop1.Record(top1Percent);

    /// <summary>A new generation started with <paramref name="worldSize"/> workers.</summary>
    public void RecordGeneration(int generation, int worldSize)
    {
        _generation.Record(generation);
        _worldSize.Record(worldSize);
    }

    /// <summary>One all-reduce on the data plane took <paramref name="seconds"/>.</summary>
    public void RecordAllReduce(double seconds) => _allReduce.Record(seconds);

    /// <summary>One checkpoint took <paramref name="seconds"/> to write.</summary>
    public void RecordCheckpoint(double seconds) => _checkpoint.Record(seconds);

    /// <summary>The oldest key in the queue was enqueued <paramref name="steps"/> optimizer steps ago.</summary>
    public void RecordQueueAge(long steps) => _queueAge.Record(steps);

    /// <summary>Age in steps of the oldest key of a full queue of <paramref name="queueSize"/> keys when each step enqueues <paramref name="keysPerStep"/>.</summary>
    public static long QueueAgeSteps(int queueSize, int keysPerStep)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(keysPerStep);
        return (queueSize + keysPerStep - 1) / keysPerStep;
    }

    /// <inheritdoc />
    public void Dispose() => _meter.Dispose();
}
