using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCo.Model.Nn;

/// <summary>
/// BatchNorm2d over G groups of the batch (the official MoCo CIFAR demo's SplitBatchNorm): in training each
/// group is normalised with its own statistics, as if it ran on its own GPU; the running statistics are the
/// average over the groups. Group j of a batch of N = G·b samples holds the samples n with n mod G = j
/// (the demo's <c>input.view(-1, C*G, H, W)</c>), so no copy is needed.
///
/// Step atomicity (docs/architecture.md, Invariants, I5): training forwards do not touch the running
/// statistics; they leave a pending update (chained across several forwards of one step) that
/// <see cref="CommitPending"/> applies once the step has succeeded and <see cref="DropPending"/> forgets.
/// Names and shapes match torch.nn.BatchNorm2d (weight, bias, running_mean, running_var, num_batches_tracked).
/// </summary>
public sealed class SplitBatchNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter bias;
    private readonly Tensor running_mean;
    private readonly Tensor running_var;
    private readonly Tensor num_batches_tracked;

    private readonly long _features;
    private readonly double _momentum;
    private readonly double _eps;
    private Tensor? _pendingMean;
    private Tensor? _pendingVar;
    private long _pendingBatches;

    public SplitBatchNorm(long features, int groups = 1, double momentum = 0.1, double eps = 1e-5)
        : base(nameof(SplitBatchNorm))
    {
        _features = features;
        _momentum = momentum;
        _eps = eps;
        Groups = groups;
        weight = new Parameter(ones(features));
        bias = new Parameter(zeros(features));
        running_mean = zeros(features);
        running_var = ones(features);
        num_batches_tracked = zeros(1, dtype: ScalarType.Int64).squeeze();
        RegisterComponents();
    }

    /// <summary>BatchNorm's initial state: weight 1, bias 0, running mean 0 and variance 1, nothing tracked.</summary>
    public void ResetParameters()
    {
        using var _ = no_grad();
        weight.fill_(HeldScalar.One);
        bias.fill_(HeldScalar.Zero);
        running_mean.fill_(HeldScalar.Zero);
        running_var.fill_(HeldScalar.One);
        num_batches_tracked.fill_(HeldScalar.Zero);
        DropPending();
    }

    /// <summary>The number of BN groups in the batches this module will see (may change between forwards).</summary>
    public int Groups { get; set; }

    /// <summary>The epsilon added to the variance.</summary>
    public double Eps => _eps;

    public Tensor RunningMean => running_mean;

    public Tensor RunningVar => running_var;

    public Tensor NumBatchesTracked => num_batches_tracked;

    public override Tensor forward(Tensor input)
    {
        if (!training)
        {
            return nn.functional.batch_norm(input, running_mean, running_var, weight, bias, false, _momentum, _eps);
        }
        long n = input.shape[0];
        int g = Groups;
        if (g < 1 || n % g != 0)
        {
            throw new InvalidOperationException($"SplitBatchNorm: a batch of {n} cannot be split into {g} BN groups");
        }
        LayerCallRecorder.RecordBatchNorm(input, _features, g);
        using var scope = NewDisposeScope();
        var mean = (_pendingMean ?? running_mean).detach();
        var var_ = (_pendingVar ?? running_var).detach();
        // The statistics are float32 whatever the input: libtorch's CPU batch_norm takes bf16 input with fp32
        // parameters and accumulates in float32.
        var meanSplit = mean.repeat(g);
        var varSplit = var_.repeat(g);
        var shape = input.shape;
        var x = input.view(n / g, _features * g, shape[2], shape[3]);
        var y = nn.functional.batch_norm(x, meanSplit, varSplit, weight.repeat(g), bias.repeat(g), true, _momentum, _eps)
            .view(shape);
        var newMean = meanSplit.view(g, _features).mean([0]);
        var newVar = varSplit.view(g, _features).mean([0]);
        _pendingMean?.Dispose();
        _pendingVar?.Dispose();
        _pendingMean = newMean.DetachFromDisposeScope();
        _pendingVar = newVar.DetachFromDisposeScope();
        _pendingBatches++;
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The pending running mean and variance (empty before the first training forward of a step). Workers
    /// average them over the whole world before committing, so the buffers do not depend on the world size.
    /// </summary>
    public IEnumerable<Tensor> PendingStatistics()
    {
        if (_pendingMean is not null && _pendingVar is not null)
        {
            yield return _pendingMean;
            yield return _pendingVar;
        }
    }

    /// <summary>Applies the running-statistics update of the forwards since the last commit.</summary>
    public void CommitPending()
    {
        if (_pendingMean is null || _pendingVar is null)
        {
            return;
        }
        using (no_grad())
        {
            running_mean.copy_(_pendingMean);
            running_var.copy_(_pendingVar);
            using Scalar batches = _pendingBatches; // held (HeldScalar)
            num_batches_tracked.add_(batches);
        }
        DropPending();
    }

    /// <summary>Forgets the pending update (the step failed and is redone).</summary>
    public void DropPending()
    {
        _pendingMean?.Dispose();
        _pendingVar?.Dispose();
        _pendingMean = null;
        _pendingVar = null;
        _pendingBatches = 0;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            DropPending();
        }
        base.Dispose(disposing);
    }
}
