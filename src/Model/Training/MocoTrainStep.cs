using System.Diagnostics;
using MoCo.Model.Collectives;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Model.Training;

/// <summary>What one step reports: scalars only (never tensors), identical on every rank.</summary>
public sealed record StepResult(long GlobalStep, int Epoch, int StepInEpoch, double Loss, double InstanceAcc, double Lr);

/// <summary>
/// One MoCo training step on this worker's share of the global batch, talking to its peers only through
/// <see cref="ICollective"/>. The step is atomic (docs/architecture.md, Invariants, I5): parameters,
/// optimizer state, queue, pointer and BN buffers change only after every collective of the step succeeded;
/// when anything throws before that, the pending BN statistics and gradients are dropped and the step can be
/// redone from the same state.
/// </summary>
public sealed class MocoTrainStep
{
    private readonly MomentumContrast _model;
    private readonly Sgd _optimizer;
    private readonly ulong _seed;
    private GradientBucketPlan? _plan;
    private List<TorchSharp.Modules.Parameter>? _parameters;
    private bool _parametersOnCpu;

    public MocoTrainStep(MomentumContrast model, Sgd optimizer, ulong seed, GradientBucketing? bucketing = null)
    {
        _model = model;
        _optimizer = optimizer;
        _seed = seed;
        Bucketing = bucketing ?? GradientBucketing.Default;
    }

    /// <summary>
    /// How gradients travel when the world has more than one rank (a worker setting; the math does not depend on
    /// it). Overlap needs the autograd engine to run on the calling thread, so it applies to CPU parameters only;
    /// elsewhere the step makes one flat all-reduce.
    /// </summary>
    public GradientBucketing Bucketing { get; set; }

    /// <summary>How many buckets of the last step were launched while its backward was still running.</summary>
    public int LastBucketsDuringBackward { get; private set; }

    /// <summary>
    /// Seconds the last step waited after backward for its gradients, BN statistics and scalars to be all-reduced
    /// (the communication that overlap did not hide); 0 in a world of one.
    /// </summary>
    public double LastReduceWaitSeconds { get; private set; }

    /// <summary>The buckets of this step's model at the current <see cref="Bucketing"/> (built once per size).</summary>
    public GradientBucketPlan BucketPlan()
    {
        if (_plan is null || _plan.TargetBytes != Bucketing.BucketBytes)
        {
            // the parameters and their device are fixed once the optimizer holds them: listed once, not per step
            _parameters ??= _optimizer.Parameters.Select(p => p.Param).ToList();
            _parametersOnCpu = _parameters.All(p => p.device_type == DeviceType.CPU);
            _plan = GradientBucketPlan.Build(_parameters, _model.EncoderQ.Segments, Bucketing.BucketBytes);
        }
        return _plan;
    }

    /// <summary>The ShuffleBN permutation of pass <paramref name="pass"/> of a step: a function of (seed, epoch, step).</summary>
    public static int[] ShufflePermutation(ulong seed, int epoch, int stepInEpoch, int pass, int globalBatch)
    {
        var rng = new CounterRng(seed, RngStream.ShuffleBn, (ulong)epoch, (ulong)stepInEpoch, (ulong)pass);
        return rng.Permutation(globalBatch);
    }

    /// <summary>
    /// Runs the step. <paramref name="view1"/> and <paramref name="view2"/> hold this rank's positions of the
    /// global batch (<see cref="BatchLayout.Positions"/>), in local order.
    /// </summary>
    public StepResult Run(Tensor view1, Tensor view2, ICollective collective, BatchLayout layout, int epoch, int stepInEpoch, long globalStep, double lr)
    {
        var qEncoder = _model.EncoderQ;
        var kEncoder = _model.EncoderK;
        bool committed = false;
        LastBucketsDuringBackward = 0;
        LastReduceWaitSeconds = 0;
        try
        {
            using var scope = NewDisposeScope();
            using var buckets = collective.WorldSize > 1 && Bucketing.Enabled ? NewBuckets(collective) : null; // null: one flat all-reduce
            qEncoder.SegmentTap = buckets;
            _model.train();
            qEncoder.SetBnGroups(layout.LocalGroups(collective.Rank));
            _optimizer.ZeroGrad();
            var ctx1 = new ShuffleContext(collective, layout, ShufflePermutation(_seed, epoch, stepInEpoch, 0, layout.GlobalBatch));
            var (loss, correct, keys) = _model.ContrastiveLoss(view1, view2, ctx1);
            int passes = 1;
            if (_model.Settings.Symmetric)
            {
                // official demo: loss_12 + loss_21, keys enqueued as cat([k1, k2])
                var ctx2 = new ShuffleContext(collective, layout, ShufflePermutation(_seed, epoch, stepInEpoch, 1, layout.GlobalBatch));
                var (loss21, correct21, keys1) = _model.ContrastiveLoss(view2, view1, ctx2);
                loss = loss + loss21;
                correct = correct + correct21;
                keys = cat([keys1, keys], 0);
                passes = 2;
            }
            loss.backward();
            long backwardDone = Stopwatch.GetTimestamp();

            // The gradients the buckets did not carry (all of them when bucketing is off), the BN statistics and the
            // two scalars travel in one last collective. Each worker's pending BN statistics average its own groups;
            // weighted by its share of the groups, their sum is the average over all G groups, as one worker would
            // have computed.
            var grads = buckets is not null
                ? buckets.Complete()
                : _optimizer.Parameters.Select(p => p.Param.grad).Where(g => g is not null).Select(g => g!).ToList();
            LastBucketsDuringBackward = buckets?.LaunchedDuringBackward ?? 0;
            var norms = qEncoder.Norms.Concat(kEncoder.Norms).SelectMany(bn => bn.PendingStatistics()).ToList();
            var stats = stack([loss.detach(), correct]).to(ScalarType.Float32);
            if (collective.WorldSize > 1)
            {
                using Scalar share = (double)layout.LocalGroups(collective.Rank) / layout.Groups; // held (HeldScalar)
                using (no_grad())
                {
                    foreach (var n in norms)
                    {
                        n.mul_(share); // pending statistics only: dropped unless the step commits
                    }
                }

                if (buckets is null && _optimizer.IsFlat && _model.FlatQ?.Grad is { } flatGrad)
                {
                    // the gradients are one buffer already: reduced where they lie, no concatenation or copies back
                    collective.AllReduceSum(flatGrad);
                    FlatAllReduce.SumInPlace(collective, [.. norms, stats]);
                }
                else
                {
                    FlatAllReduce.SumInPlace(collective, [.. grads, .. norms, stats]);
                }
                LastReduceWaitSeconds = Stopwatch.GetElapsedTime(backwardDone).TotalSeconds;
            }

            double lossSum = stats[0].ToDouble();
            double correctSum = stats[1].ToDouble();

            if (!double.IsFinite(lossSum))
            {
                throw new NonFiniteLossException(globalStep, epoch, stepInEpoch, lossSum, lr);
            }

            // commit: nothing above changed the state
            _optimizer.Step(lr);
            _model.MomentumUpdate();
            _model.Enqueue(keys);
            qEncoder.CommitNormStatistics();
            kEncoder.CommitNormStatistics();
            committed = true;
            return new StepResult(globalStep, epoch, stepInEpoch, lossSum, correctSum / (layout.GlobalBatch * passes), lr);
        }
        finally
        {
            qEncoder.SegmentTap = null;
            if (!committed)
            {
                qEncoder.DropNormStatistics();
                kEncoder.DropNormStatistics();
                _optimizer.ZeroGrad();
            }
        }
    }

    /// <summary>
    /// The step's buckets, or null for the flat all-reduce: overlap needs the autograd engine on the calling thread
    /// (CPU parameters), and buckets that cannot overlap only add collectives and copies, so a requested overlap on an
    /// accelerator takes the flat path; buckets after backward without overlap stay available (measurements).
    /// </summary>
    private BucketedAllReduce? NewBuckets(ICollective collective)
    {
        var plan = BucketPlan();
        if (Bucketing.Overlap && !_parametersOnCpu)
        {
            return null;
        }

        return new BucketedAllReduce(collective, plan, _parameters!, Bucketing.Overlap);
    }
}
