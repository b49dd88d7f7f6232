from __future__ import annotations

import factory

from accounts.models import ApiKey, User
from accounts.services import user_set_role

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("email",)
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    display_name = factory.Faker("name")
    role = User.Role.USER
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def sync_role(self, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            user_set_role(user=self, role=self.role)
            self.save()


class ApiKeyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApiKey

    user = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"key {n}")
    prefix = "ob_test0"
    key_hash = factory.Sequence(lambda n: ApiKey.hash_secret(f"secret-{n}"))
