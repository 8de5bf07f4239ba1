using MoCo.Model.Nn;
using MoCo.Model.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCo.Model.Tests;

/// <summary>
/// Flat parameter buffers: the parameters of an encoder as views of one buffer, and the optimizer, the momentum
/// update and backward working on them. The loop over parameters is the reference: the buffer-wide operations must
/// give the same bits.
/// </summary>
public sealed class FlatParametersTests
{
    private static readonly EncoderSpec Spec = new("resnet18", 4, Stem.Cifar, 16, false, 2);

    private static MomentumContrast Model() => new(() => new ResNet(Spec), new MocoSettings(16, 64, 0.99, 0.1, false), seed: 3);

    private static Sgd Optimizer(MomentumContrast model) =>
        new(model.EncoderQ.named_parameters().Select(p => ("encoder_q." + p.name, p.parameter)), 0.9, 5e-4);

    [Fact]
    public void Adopting_a_buffer_must_keep_every_parameter_its_values_and_make_it_a_view_of_the_buffer()
    {
        using var model = Model();
        var parameters = model.EncoderQ.parameters().ToList();
        var before = parameters.Select(p => p.detach().clone()).ToList();

        using var flat = FlatParameters.Adopt(parameters, gradients: true);

        Assert.Equal(parameters.Sum(p => p.numel()), flat.Count);
        for (int i = 0; i < parameters.Count; i++)
        {
            Assert.Same(parameters[i], model.EncoderQ.parameters().ElementAt(i));
            Assert.True(parameters[i].requires_grad);
            Assert.Equal(before[i].data<float>().ToArray(), parameters[i].data<float>().ToArray());
            Assert.Equal(flat.Data.narrow(0, flat.Offset(i), parameters[i].numel()).data<float>().ToArray(), parameters[i].data<float>().ToArray());
        }
        using (no_grad())
        {
            flat.Data.add_(1.0f); // one write reaches every parameter
        }
        Assert.Equal(before[0].add(1.0f).data<float>().ToArray(), parameters[0].data<float>().ToArray());
        Assert.Equal(before[^1].add(1.0f).data<float>().ToArray(), parameters[^1].data<float>().ToArray());
    }

    [Fact]
    public void Backward_must_accumulate_into_the_gradient_buffer()
    {
        using var model = Model();
        var parameters = model.EncoderQ.parameters().ToList();
        using var flat = FlatParameters.Adopt(parameters, gradients: true);
        model.train();
        using var x = randn(4, 3, 8, 8, generator: new Generator(1));

        model.EncoderQ.forward(x).square().sum().backward();

        Assert.True(flat.Grad!.abs().sum().item<float>() > 0, "no gradient reached the buffer");
        for (int i = 0; i < parameters.Count; i++)
        {
            Assert.Equal(parameters[i].grad!.data<float>().ToArray(), flat.Grad.narrow(0, flat.Offset(i), parameters[i].numel()).data<float>().ToArray());
        }
        flat.CheckIntact();
    }

    [Fact]
    public void A_parameter_whose_storage_was_replaced_must_be_caught()
    {
        using var model = Model();
        var parameters = model.EncoderQ.parameters().ToList();
        using var flat = FlatParameters.Adopt(parameters, gradients: false);
        using (no_grad())
        {
            parameters[2].set_(parameters[2].detach().clone());
        }

        var error = Assert.Throws<InvalidOperationException>(flat.CheckIntact);
        Assert.Contains("parameter 2", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Flat_sgd_and_momentum_update_must_give_the_bits_of_the_loop_over_parameters()
    {
        using var loopModel = Model();
        using var flatModel = Model();
        using var loopSgd = Optimizer(loopModel);
        flatModel.UseFlatParameters();
        using var flatSgd = Optimizer(flatModel);
        flatSgd.UseFlat(flatModel.FlatQ!);
        var loopParams = loopModel.EncoderQ.parameters().ToList();
        var flatParams = flatModel.EncoderQ.parameters().ToList();
        var generator = new Generator(11);

        for (int step = 0; step < 4; step++)
        {
            loopSgd.ZeroGrad();
            flatSgd.ZeroGrad();
            using (no_grad())
            {
                for (int i = 0; i < loopParams.Count; i++)
                {
                    using var g = randn(loopParams[i].shape, generator: generator);
                    // the loop's gradient as autograd leaves it (a tensor of its own), the flat one inside the buffer
                    loopParams[i].grad = g.clone();
                    flatParams[i].grad!.copy_(g);
                }
            }
            double lr = 0.03 * (step + 1);
            loopSgd.Step(lr);
            flatSgd.Step(lr);
            loopModel.MomentumUpdate();
            flatModel.MomentumUpdate();
        }

        var loopState = loopModel.state_dict();
        foreach (var (name, tensor) in flatModel.state_dict())
        {
            Assert.True(tensor.dtype != ScalarType.Float32 || tensor.data<float>().ToArray().SequenceEqual(loopState[name].data<float>().ToArray()),
                $"{name} differs between the flat buffer and the loop over parameters");
        }
        var loopMomentum = loopSgd.StateTensors().ToDictionary(kv => kv.Key, kv => kv.Value);
        foreach (var (name, buffer) in flatSgd.StateTensors())
        {
            Assert.Equal(loopMomentum[name].data<float>().ToArray(), buffer.data<float>().ToArray());
        }
    }

    [Fact]
    public void Flat_optimizer_state_must_load_what_the_loop_saved_and_refuse_a_partial_state()
    {
        using var loopModel = Model();
        using var loopSgd = Optimizer(loopModel);
        loopSgd.EnsureState();
        foreach (var (_, buffer) in loopSgd.StateTensors())
        {
            buffer.normal_();
        }
        var saved = loopSgd.StateTensors().ToDictionary(kv => kv.Key, kv => kv.Value.clone());

        using var flatModel = Model();
        flatModel.UseFlatParameters();
        using var flatSgd = Optimizer(flatModel);
        flatSgd.UseFlat(flatModel.FlatQ!);
        flatSgd.LoadState(saved);
        foreach (var (name, buffer) in flatSgd.StateTensors())
        {
            Assert.Equal(saved[name].data<float>().ToArray(), buffer.data<float>().ToArray());
        }

        saved.Remove(saved.Keys.First());
        Assert.Throws<InvalidDataException>(() => flatSgd.LoadState(saved));
        using var other = Model();
        Assert.Throws<ArgumentException>(() => Optimizer(other).UseFlat(flatModel.FlatQ!)); // another model's buffer
    }
}
