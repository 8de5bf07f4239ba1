using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCo.Model.Training;

/// <summary>
/// torch.optim.SGD with momentum and weight decay, dampening 0, no Nesterov: d = g + wd·p;
/// buf = d on the first step, else m·buf + d; p ← p − lr·buf. Weight decay applies to every parameter,
/// BN and biases included, as the official MoCo code does. Written here so that the step can apply it only
/// after every collective succeeded, and so that its state has plain names in checkpoints.
/// </summary>
public sealed class Sgd : IDisposable
{
    private readonly IReadOnlyList<(string Name, Parameter Param)> _params;
    private readonly Tensor?[] _momentumBuffers;
    private FlatParameters? _flat;
    private Tensor? _flatMomentum;

    public Sgd(IEnumerable<(string Name, Parameter Param)> parameters, double momentum, double weightDecay)
    {
        _params = parameters.Where(p => p.Param.requires_grad).ToList();
        _momentumBuffers = new Tensor?[_params.Count];
        Momentum = momentum;
        WeightDecay = weightDecay;
    }

    public double Momentum { get; }

    public double WeightDecay { get; }

    public IReadOnlyList<(string Name, Parameter Param)> Parameters => _params;

    /// <summary>True when the parameters live in one flat buffer and each step is three operations on it.</summary>
    public bool IsFlat => _flat is not null;

    /// <summary>
    /// Steps on <paramref name="flat"/>'s buffers from now on: the decay, the momentum and the update are one operation
    /// each over every parameter, and the momentum buffers become views of one flat buffer. The same arithmetic, element
    /// by element, as the loop over parameters. Before the first step only.
    /// </summary>
    /// <exception cref="ArgumentException">The buffer holds other parameters, or in another order, or has no gradients.</exception>
    /// <exception cref="InvalidOperationException">A step has run (there is momentum state).</exception>
    public void UseFlat(FlatParameters flat)
    {
        ArgumentNullException.ThrowIfNull(flat);
        if (flat.Grad is null || flat.Parameters.Count != _params.Count
            || flat.Parameters.Where((p, i) => !ReferenceEquals(p, _params[i].Param)).Any())
        {
            throw new ArgumentException("the flat buffer must hold the optimizer's parameters, in its order, with their gradients", nameof(flat));
        }
        if (HasState)
        {
            throw new InvalidOperationException("flat buffers are adopted before the first step");
        }
        _flat = flat;
    }

    public void ZeroGrad()
    {
        if (_flat is not null)
        {
            _flat.Grad!.zero_();
            return;
        }
        foreach (var (_, p) in _params)
        {
            var g = p.grad;
            if (g is not null)
            {
                g.zero_();
            }
        }
    }

    public void Step(double lr)
    {
        using var _ = no_grad();
        if (_flat is not null)
        {
            StepFlat(lr);
            return;
        }
        for (int i = 0; i < _params.Count; i++)
        {
            var p = _params[i].Param;
            var g = p.grad;
            if (g is null)
            {
                continue;
            }
            using Scalar wd = WeightDecay, momentum = Momentum, step = -lr; // held (HeldScalar)
            using var d = WeightDecay != 0 ? g.add(p, alpha: wd) : g.alias();
            if (Momentum != 0)
            {
                var buf = _momentumBuffers[i];
                if (buf is null)
                {
                    _momentumBuffers[i] = d.detach().clone().DetachFromDisposeScope();
                }
                else
                {
                    buf.mul_(momentum).add_(d, HeldScalar.One);
                }
                p.add_(_momentumBuffers[i]!, alpha: step);
            }
            else
            {
                p.add_(d, alpha: step);
            }
        }
    }

    /// <summary>
    /// d = g + wd·p; buf = d (first step) or m·buf + d; p ← p − lr·buf, each over the whole flat buffer. d is computed
    /// in the gradient buffer itself: a temporary the size of the model would be allocated and faulted in afresh every
    /// step (above the allocator's mapping threshold it is never reused), and the gradients are not read again before
    /// <see cref="ZeroGrad"/>. The same arithmetic as the loop's <c>g.add(p, alpha: wd)</c>, element by element.
    /// </summary>
    private void StepFlat(double lr)
    {
        _flat!.CheckIntact();
        var p = _flat.Data;
        var d = _flat.Grad!;
        using Scalar wd = WeightDecay, momentum = Momentum, step = -lr; // held (HeldScalar)
        if (WeightDecay != 0)
        {
            d.add_(p, alpha: wd);
        }
        if (Momentum == 0)
        {
            p.add_(d, alpha: step);
            return;
        }
        if (_flatMomentum is null)
        {
            AdoptFlatMomentum(d.detach().clone());
        }
        else
        {
            _flatMomentum.mul_(momentum).add_(d, HeldScalar.One);
        }
        p.add_(_flatMomentum!, alpha: step);
    }

    /// <summary>Makes <paramref name="buffer"/> the flat momentum buffer and each parameter's buffer a view of it.</summary>
    private void AdoptFlatMomentum(Tensor buffer)
    {
        _flatMomentum = buffer.DetachFromDisposeScope();
        for (int i = 0; i < _params.Count; i++)
        {
            _momentumBuffers[i]?.Dispose();
            var shape = _params[i].Param.shape;
            _momentumBuffers[i] = _flatMomentum.narrow(0, _flat!.Offset(i), _params[i].Param.numel()).view(shape).DetachFromDisposeScope();
        }
    }

    /// <summary>The momentum buffers by parameter name ("momentum_buffer." + name); absent before the first step.</summary>
    public IEnumerable<KeyValuePair<string, Tensor>> StateTensors()
    {
        for (int i = 0; i < _params.Count; i++)
        {
            if (_momentumBuffers[i] is { } buf)
            {
                yield return new KeyValuePair<string, Tensor>("momentum_buffer." + _params[i].Name, buf);
            }
        }
    }

    /// <summary>Whether any momentum buffer exists (false before the first step).</summary>
    public bool HasState => _momentumBuffers.Any(b => b is not null);

    /// <summary>
    /// Creates a zero momentum buffer for every parameter that has none. Mathematically a no-op: with dampening 0,
    /// m·0 + d = d, the first step's buffer. Lets a replica receive another's state tensor by tensor.
    /// </summary>
    public void EnsureState()
    {
        if (_flat is not null)
        {
            if (_flatMomentum is null)
            {
                AdoptFlatMomentum(zeros_like(_flat.Data));
            }
            return;
        }
        for (int i = 0; i < _params.Count; i++)
        {
            _momentumBuffers[i] ??= zeros_like(_params[i].Param).DetachFromDisposeScope();
        }
    }

    /// <summary>Drops every momentum buffer (the state before the first step).</summary>
    public void ClearState()
    {
        for (int i = 0; i < _params.Count; i++)
        {
            _momentumBuffers[i]?.Dispose();
            _momentumBuffers[i] = null;
        }
        _flatMomentum?.Dispose();
        _flatMomentum = null;
    }

    public void LoadState(IReadOnlyDictionary<string, Tensor> tensors)
    {
        if (_flat is not null)
        {
            int present = _params.Count(p => tensors.ContainsKey("momentum_buffer." + p.Name));
            ClearState();
            if (present == 0)
            {
                return;
            }
            if (present != _params.Count)
            {
                throw new InvalidDataException($"the optimizer state holds momentum buffers for {present} of {_params.Count} parameters: all or none");
            }
            AdoptFlatMomentum(zeros_like(_flat.Data));
            using var _ = no_grad();
            for (int i = 0; i < _params.Count; i++)
            {
                _momentumBuffers[i]!.copy_(tensors["momentum_buffer." + _params[i].Name]);
            }
            return;
        }
        for (int i = 0; i < _params.Count; i++)
        {
            _momentumBuffers[i]?.Dispose();
            _momentumBuffers[i] = tensors.TryGetValue("momentum_buffer." + _params[i].Name, out var t) ? OnParameterDevice(t, _params[i].Param).DetachFromDisposeScope() : null;
        }
    }

    /// <summary>A copy of <paramref name="saved"/> beside <paramref name="parameter"/> (a checkpoint's tensors are on the CPU).</summary>
    private static Tensor OnParameterDevice(Tensor saved, Tensor parameter)
    {
        var device = parameter.device;
        return saved.device_type == device.type && saved.device_index == device.index
            ? saved.detach().clone()
            : saved.detach().to(device);
    }

    public void Dispose()
    {
        foreach (var b in _momentumBuffers)
        {
            b?.Dispose();
        }
        _flatMomentum?.Dispose();
    }
}
